"""Vectors and their metadata in Milvus: Milvus Lite (a local .db file) by default, any Milvus
server or cluster when a URI is set. One collection per (library, model), so vectors of different
models never mix; the model name, dim and schema version are collection properties checked on open.

Rows are segments: a file no longer than its model's window is one row, a longer file one row per
overlapping window (`seg_start`, `seg_end` in seconds). The file's sha256 (`file_id`) stays its
identity for dedupe, replace and delete; searches return one hit per file, its best segment.

The connection heals: Milvus Lite's in-process gRPC server refuses keepalive pings (it answers
GOAWAY too_many_pings after a few idle pings, and a channel shared with the old subchannel then
fails to reconnect), so Lite clients send none; every call that meets a broken channel
(GOAWAY, UNAVAILABLE, a restarted server) reconnects on a fresh channel and retries a bounded
number of times, else raises StoreError. Every call made here is idempotent (upserts by primary
key, deletes by id, reads), which is what makes the retry safe.

Filters are built here from typed values only (quoted with JSON escaping), never from raw text.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .mirror import RowHit, VectorMirror
from .settings import is_lite_uri

SCHEMA_VERSION = "2"  # 1: one vector per file (id = sha256); 2: segments (file_id, seg, seg_start, seg_end)
ID_MAX = 80
PATH_MAX = 2048
TEXT_MAX = 512
TAGS_MAX = 1024  # a JSON list of the file's top tags
FILE_FIELDS = ["file_id", "path", "name", "label", "duration", "sample_rate", "indexed_at"]
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds before each reconnect-and-retry
MIRROR_CHECK_ROWS = 32  # rows of a saved mirror compared with Milvus before it is trusted

# Lite's server runs in this process on loopback: pings detect nothing there and only provoke
# GOAWAY too_many_pings. A local subchannel pool makes every reconnect a truly fresh channel.
LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0,
                     "grpc.use_local_subchannel_pool": 1}
SERVER_GRPC_OPTIONS = {"grpc.use_local_subchannel_pool": 1}
# A server's reads use Session consistency: they see every write this process made (pymilvus keeps
# its last write's timestamp) without waiting. Strong makes every read wait for the next time tick,
# ~200 ms per search on a server (measured: 200 ms against 5-6 ms); writers call settle() instead.
# Except a channel's first read, which is Strong: a process that has not written has no session
# timestamp, so Session means "whatever the query node holds now", and a restarted server replays
# its unflushed writes from its log for a while after it answers (a search then saw an empty
# library). One wait per channel makes every later read see at least what the server held.
READS = frozenset({"search", "query", "query_iterator", "get"})


class StoreError(RuntimeError):
    """The vector store refused an operation; the message is for people."""


class LibraryLocked(StoreError):
    """The Milvus Lite file is open in another process: Lite allows one process per file."""

    def __init__(self, uri: str):
        self.uri = uri
        super().__init__(f"The library {uri} is open in another process (a running Soundalike app, or a command "
                         "still working on it): Milvus Lite lets one process at a time open a library file.")


_exit_hook: list[bool] = []


def _save_at_exit() -> None:
    """Once per process: save changed mirrors when the interpreter exits normally."""
    if not _exit_hook:
        import atexit

        atexit.register(lambda: Store.save_mirrors())
        _exit_hook.append(True)


def lite_lock_held(uri: str) -> bool:
    """Whether another process holds Milvus Lite's lock on this library file (it takes an
    exclusive flock on `<db>/LOCK` while the file is open). A probe: it takes and drops the lock."""
    lock = Path(uri) / "LOCK"
    try:
        import fcntl
    except ImportError:  # Windows: Lite locks differently there; opening reports it
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:  # no lock file: the library was never opened, or is not a Lite file
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@dataclass
class Record:
    """One file: its vector, or one vector per segment with `spans` [(start, end), ...] in seconds."""

    id: str  # sha256 of the file's bytes
    embedding: np.ndarray  # (dim,) or (segments, dim)
    path: str
    name: str
    label: str
    duration: float
    sample_rate: int
    indexed_at: float
    spans: Sequence[tuple[float, float]] | None = None  # None: one segment, the whole file
    tags: list[dict] | None = None  # what a tagging model hears in the file: [{"label", "p"}], top first


@dataclass
class Hit:
    id: str  # the file's id
    score: float  # cosine similarity clipped to [0, 1]; higher is closer
    path: str
    name: str
    label: str
    duration: float
    start: float = 0.0  # the best-matching segment of the file, seconds
    end: float = 0.0
    tags: list[dict] | None = None  # None: the model names no classes (or the library predates tags)


def collection_name(library: str, model: str) -> str:
    base = re.sub(r"[^0-9a-zA-Z_]", "_", f"{library}__{model}")
    return base if base[0].isalpha() or base[0] == "_" else f"c_{base}"


def quote(value: str) -> str:
    """A Milvus string literal for any text (JSON escaping; checked against Milvus Lite)."""
    return json.dumps(str(value), ensure_ascii=False)


def _clean_text(value: str, limit: int) -> str:
    value = "".join(ch for ch in str(value) if ch.isprintable())
    return value[:limit]


def build_filter(label: str | None = None, max_duration: float | None = None, path: str | None = None) -> str:
    parts = []
    if label:
        parts.append(f"label == {quote(label)}")
    if max_duration is not None:
        parts.append(f"duration <= {float(max_duration)!r}")
    if path is not None:
        parts.append(f"path == {quote(path)}")
    return " and ".join(parts)


def _and(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def _in(field: str, values: Sequence[str]) -> str:
    return f"{field} in [" + ", ".join(quote(v) for v in values) + "]"


def _tags_json(tags: list[dict] | None) -> str:
    """Stored tags: as many of the top ones as fit the field."""
    tags = list(tags or [])
    while tags and len(json.dumps(tags, ensure_ascii=False)) > TAGS_MAX:
        tags.pop()
    return json.dumps(tags, ensure_ascii=False) if tags else ""


def row_id(file_id: str, seg: int) -> str:
    return f"{file_id}#{seg}"


def is_connection_error(exc: BaseException) -> bool:
    """A broken or refused channel (worth a reconnect), as opposed to an error of the request."""
    import grpc

    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, grpc.RpcError) and hasattr(seen, "code") and seen.code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED
        ):
            return True
        if getattr(seen, "code", None) == 2 and "Fail connecting" in str(seen):  # pymilvus CONNECT_FAILED
            return True
        msg = str(seen).lower()
        if any(s in msg for s in ("unavailable", "fail connecting", "goaway", "too many pings", "too_many_pings",
                                  "socket closed", "connection reset", "connection refused", "channel closed",
                                  "cannot invoke rpc on closed channel")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Store:
    """A Milvus collection bound to one model; created on first use, verified on reopen."""

    # One client per URI per process (Lite allows one per .db file): shared, keyed by URI.
    _clients: dict[str, object] = {}
    _clients_lock = threading.Lock()
    # Lite only: exact in-process search (see mirror.py), one per (file, collection), shared by
    # every Store object of this process so writes through any of them are seen by all.
    _mirrors: dict[tuple[str, str], VectorMirror] = {}

    def __init__(self, uri: str, collection: str, model: str, dim: int, token: str | None = None, *,
                 mirror: bool = True, grpc_options: dict | None = None):
        self.uri = uri
        self.collection = collection
        self.model = model
        self.dim = int(dim)
        self.token = token
        self.use_mirror = mirror and self.is_lite
        self.grpc_options = grpc_options
        self._lock = threading.RLock()
        self.has_tags = False  # set by ensure(): whether the collection has the tags field
        self.client  # connect now: a bad URI fails here, with a clear message
        self.ensure()

    # -- connection ----------------------------------------------------------------------------
    @property
    def _key(self) -> str:
        return f"{self.uri}|{self.token or ''}|{sorted((self.grpc_options or {}).items())}"

    @property
    def client(self):
        with self._clients_lock:
            client = self._clients.get(self._key)
            if client is None:
                client = self._clients[self._key] = self._connect()
            return client

    def _connect(self):
        from pymilvus import MilvusClient

        # pymilvus warns on every Lite query_iterator (no server-side mvcc ts), and logs its own
        # reconnect attempts with tracebacks; this module reports what matters as StoreError.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
        if self.is_lite:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            # Lite's in-process server logs a traceback for every query_iterator (AllocTimestamp is not implemented)
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        options = dict(LITE_GRPC_OPTIONS if self.is_lite else SERVER_GRPC_OPTIONS)
        options.update(self.grpc_options or {})
        try:
            # dedicated: this client owns its channel, so a reconnect never inherits a broken one
            return MilvusClient(self.uri, token=self.token or "", dedicated=True, grpc_options=options)
        except Exception as exc:
            if self.is_lite and lite_lock_held(self.uri):
                raise LibraryLocked(self.uri) from None
            raise StoreError(f"Cannot open Milvus at {self.where} ({str(exc).splitlines()[0]})") from None

    def _reconnect(self, broken) -> None:
        with self._clients_lock:
            if self._clients.get(self._key) is broken:
                self._clients.pop(self._key, None)
                try:
                    broken.close()
                except Exception:
                    pass
        self.client  # a fresh channel (for Lite: the in-process server is restarted if it stopped)

    def _call(self, op: str, *args, **kwargs):
        """client.<op>(...) with reconnect-and-retry on a broken channel (every op here is idempotent)."""
        last: BaseException | None = None
        for delay in (0.0, *RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                client = self.client
            except StoreError as exc:
                last = exc
                continue
            call = dict(kwargs)
            if op in READS and not self.is_lite:
                call.setdefault("consistency_level", "Session" if getattr(client, "_soundalike_settled", False) else "Strong")
            try:
                result = getattr(client, op)(*args, **call)
                if call.get("consistency_level") == "Strong":
                    client._soundalike_settled = True
                return result
            except Exception as exc:
                if op != "load_collection" and ("call load()" in str(exc) or "collection not loaded" in str(exc)):
                    # A restarted server (or Lite) starts with collections released: load, then try
                    # again. Loading can fail while the server recovers: that is retried too.
                    last = exc
                    try:
                        client.load_collection(self.collection)
                    except Exception as again:
                        last = again
                    continue
                if not is_connection_error(exc):
                    raise
                last = exc
                try:
                    self._reconnect(client)
                except StoreError as again:
                    last = again
        raise StoreError(
            f"Lost the connection to Milvus at {self.where} and could not restore it "
            f"({str(last).splitlines()[0] if last else 'unknown error'})"
        ) from None

    @property
    def where(self) -> str:
        return self.uri if self.is_lite else re.sub(r"//[^@/]*@", "//", self.uri)

    @classmethod
    def close_all(cls) -> None:
        """Close every shared client and stop this process's Milvus Lite servers, so their files
        are free for other processes (tests, shutdown, a benchmark handing a library to the CLI).
        Changed mirrors are saved first, so the next process starts fast."""
        cls.save_mirrors()
        with cls._clients_lock:
            lite = {key.split("|", 1)[0] for key in cls._clients if is_lite_uri(key.split("|", 1)[0])}
            for client in cls._clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            cls._clients.clear()
            cls._mirrors.clear()
        if lite:
            from milvus_lite.server_manager import server_manager_instance

            for uri in lite:
                server_manager_instance.release_server(uri)

    # -- schema ---------------------------------------------------------------------------------
    def ensure(self) -> None:
        from pymilvus import DataType, MilvusClient

        with self._lock:
            if self._call("has_collection", self.collection):
                self._verify()
                self._call("load_collection", self.collection)  # reopened Lite collections start released
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
            schema.add_field("file_id", DataType.VARCHAR, max_length=ID_MAX)
            schema.add_field("seg", DataType.INT64)
            schema.add_field("seg_start", DataType.FLOAT)
            schema.add_field("seg_end", DataType.FLOAT)
            schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
            schema.add_field("name", DataType.VARCHAR, max_length=TEXT_MAX)
            schema.add_field("label", DataType.VARCHAR, max_length=TEXT_MAX)
            schema.add_field("duration", DataType.FLOAT)
            schema.add_field("sample_rate", DataType.INT64)
            schema.add_field("indexed_at", DataType.DOUBLE)
            # JSON of the file's top tags ("" when its model has none). Libraries created before
            # this field keep working without tags (has_tags), so the schema version stays 2.
            schema.add_field("tags", DataType.VARCHAR, max_length=TAGS_MAX)
            index = self.client.prepare_index_params()
            # Exact search in Lite (FLAT); a server gets HNSW, which scales past one machine.
            if self.is_lite:
                index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
            else:
                index.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
            self._call(
                "create_collection",
                self.collection,
                schema=schema,
                index_params=index,
                # The default for readers that do not say; Soundalike's own reads say Session (see READS)
                consistency_level="Strong",
                properties={"soundalike.model": self.model, "soundalike.dim": str(self.dim), "soundalike.schema": SCHEMA_VERSION},
            )
            self._call("load_collection", self.collection)
            self.has_tags = True
            if self.use_mirror:  # new and empty: the mirror starts complete, upserts keep it so
                self._snapshot.unlink(missing_ok=True)  # a copy left by a dropped namesake
                self._adopt(VectorMirror(self.dim), saved=False)

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.uri)

    def _verify(self) -> None:
        desc = self._call("describe_collection", self.collection)
        props = desc.get("properties") or {}
        model = props.get("soundalike.model")
        version = props.get("soundalike.schema") or "1"
        dim = None
        for f in desc.get("fields", []):
            if f.get("name") == "embedding":
                dim = int((f.get("params") or {}).get("dim", 0))
        self.has_tags = any(f.get("name") == "tags" for f in desc.get("fields", []))
        if model != self.model or dim != self.dim:
            raise StoreError(
                f"Collection {self.collection!r} holds {model or 'unknown'} vectors of dim {dim}, "
                f"not {self.model} (dim {self.dim}); use another collection or re-index."
            )
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"The library {self.collection!r} was built by an older Soundalike (schema {version}: one vector "
                f"per file); this version stores segments with timestamps (schema {SCHEMA_VERSION}). Re-index it: "
                f"`python -m search_core drop --yes` then `python -m search_core index <your folders>` "
                f"(or keep it and use another library name with SOUNDALIKE_LIBRARY)."
            )

    @classmethod
    def drop_collection(cls, uri: str, collection: str, token: str | None = None) -> int | None:
        """Drop a collection whatever model or schema it holds (re-indexing an old library).
        Returns how many sounds it held, or None when there was no such collection."""
        probe = cls.__new__(cls)
        probe.uri, probe.collection, probe.token, probe.grpc_options = uri, collection, token, None
        probe._lock = threading.RLock()
        cls._mirrors.pop((uri, collection), None)
        if is_lite_uri(uri):
            (Path(f"{uri}.mirror") / f"{collection}.npz").unlink(missing_ok=True)
        if not probe._call("has_collection", collection):
            return None
        probe._call("load_collection", collection)
        fields = {f.get("name") for f in probe._call("describe_collection", collection).get("fields", [])}
        n = probe._call("query", collection, filter="seg == 0" if "seg" in fields else "", output_fields=["count(*)"])
        probe._call("drop_collection", collection)
        return int(n[0]["count(*)"]) if n else 0

    # -- writes ---------------------------------------------------------------------------------
    def _rows(self, r: Record) -> list[dict]:
        vecs = np.asarray(r.embedding, dtype=np.float32)
        vecs = vecs.reshape(1, -1) if vecs.ndim == 1 else vecs
        spans = list(r.spans) if r.spans is not None else [(0.0, float(r.duration))]
        if vecs.shape[1:] != (self.dim,) or len(spans) != vecs.shape[0] or not np.all(np.isfinite(vecs)):
            raise StoreError(f"bad embedding for {r.name}: shape {vecs.shape}, dim {self.dim} and {len(spans)} segments expected")
        meta = {
            "file_id": r.id,
            "path": _clean_text(r.path, PATH_MAX),
            "name": _clean_text(r.name, TEXT_MAX),
            "label": _clean_text(r.label, TEXT_MAX),
            "duration": float(r.duration),
            "sample_rate": int(r.sample_rate),
            "indexed_at": float(r.indexed_at),
        }
        if self.has_tags:
            meta["tags"] = _tags_json(r.tags)
        return [
            {"id": row_id(r.id, i), "seg": i, "seg_start": float(s), "seg_end": float(e), "embedding": v.tolist(), **meta}
            for i, (v, (s, e)) in enumerate(zip(vecs, spans))
        ]

    def upsert(self, records: Sequence[Record]) -> int:
        """Store files (all their segments); returns the number of files."""
        if not records:
            return 0
        rows = [row for r in records for row in self._rows(r)]
        with self._lock:
            mirror = self._before_write()
            try:
                # A file stored again with fewer segments must not keep its old extra ones.
                stale = [i for i in self._segment_ids([r.id for r in records], mirror) if i not in {row["id"] for row in rows}]
                if stale:
                    self._delete_rows(stale)
                for start in range(0, len(rows), 512):
                    self._call("upsert", self.collection, rows[start : start + 512])
            except BaseException:
                self._forget_mirror()  # some batches may have landed: the copy no longer knows
                raise
            if mirror is not None:
                mirror.upsert_rows(rows)
        return len(records)

    def _segment_ids(self, file_ids: Sequence[str], mirror: VectorMirror | None = None) -> list[str]:
        """Row ids of these files' segments. Lite filters by scanning every row (each query costs
        more as the library grows: indexing became quadratic), so a mirror that is in step with the
        collection answers instead; a server's query uses its scalar index."""
        if mirror is not None:
            return mirror.row_ids_of(file_ids)
        out: list[str] = []
        for start in range(0, len(file_ids), 200):
            chunk = list(file_ids[start : start + 200])
            out += [r["id"] for r in self._call("query", self.collection, filter=_in("file_id", chunk), output_fields=["id"])]
        return out

    def _delete_rows(self, ids: Sequence[str]) -> None:
        mirror = self._before_write()
        try:
            for start in range(0, len(ids), 500):
                self._call("delete", self.collection, ids=list(ids[start : start + 500]))
        except BaseException:
            self._forget_mirror()
            raise
        if mirror is not None:
            mirror.delete(ids)

    def delete(self, ids: Iterable[str] = (), *, path: str | None = None, settle: bool = True) -> int:
        """Delete files (every segment) by file id and/or path; returns the number of files deleted.
        Settled (visible to every reader) when it returns, unless the caller settles later."""
        ids = [str(i) for i in ids]
        with self._lock:
            if path is not None:
                ids += self.ids_for_path(path)
            files = sorted(self.existing_ids(ids)) if ids else []
            if not files:
                return 0
            self._delete_rows(self._segment_ids(files, self._mirrors.get(self._mirror_key) if self.is_lite else None))
            if settle:
                self.settle()
            return len(files)

    def settle(self) -> None:
        """Wait until every write made so far is visible to every reader, in any process: on a
        server one Strong read (it waits for the time tick that covers the writes, ~200 ms); Lite
        is always settled. Called when an indexing run or a delete ends, not per batch."""
        if not self.is_lite:
            self._call("query", self.collection, filter="seg == 0", output_fields=["count(*)"], consistency_level="Strong")

    def _forget_mirror(self) -> None:
        """The mirror may disagree with Milvus (a write failed half-way, or the collection goes):
        dropped, with its saved copy; the next search reads the vectors from Milvus again."""
        mirror = self._mirrors.pop(self._mirror_key, None)
        if mirror is not None:
            with mirror._lock:
                mirror.retired = True  # a save in flight, or one about to start, gives up
        if self.is_lite:
            self._snapshot.unlink(missing_ok=True)

    def drop(self) -> None:
        with self._lock:
            self._forget_mirror()
            if self._call("has_collection", self.collection):
                self._call("drop_collection", self.collection)

    # -- the Lite search mirror ------------------------------------------------------------------
    @property
    def _mirror_key(self) -> tuple[str, str]:
        return (self.uri, self.collection)

    @property
    def _snapshot(self) -> Path:
        """The saved copy of this collection's mirror, beside the Lite file."""
        return Path(f"{self.uri}.mirror") / f"{self.collection}.npz"

    def _mirror(self) -> VectorMirror:
        """The mirror: from its saved copy when that matches the collection, else every vector read
        from Milvus once (then kept in step by upsert/delete/drop, and saved again)."""
        with self._lock:
            mirror = self._mirrors.get(self._mirror_key)
            if mirror is None:
                mirror = self._load_snapshot()
                if mirror is None:
                    mirror = VectorMirror(self.dim)
                    rows: list[dict] = []
                    for row in self.iterate(("id", "file_id", "seg_start", "seg_end", "embedding"), batch=2000, files_only=False):
                        rows.append(row)
                        if len(rows) >= 10000:
                            mirror.upsert_rows(rows)
                            rows.clear()
                    if rows:
                        mirror.upsert_rows(rows)
                    self._adopt(mirror, saved=False)
                else:
                    self._adopt(mirror, saved=True)
            return mirror

    def _adopt(self, mirror: VectorMirror, *, saved: bool) -> None:
        mirror.saved_generation = mirror.generation if saved else -1
        mirror.snapshot, mirror.meta = self._snapshot, {"collection": self.collection, "model": self.model, "schema": SCHEMA_VERSION}
        self._mirrors[self._mirror_key] = mirror
        _save_at_exit()

    def _load_snapshot(self) -> VectorMirror | None:
        """The saved mirror, only if it matches the collection: same collection, model and schema,
        as many rows as Milvus holds, and a random sample of rows identical to Milvus's. Anything
        else (missing, truncated, stale, foreign) is None, and the copy is removed."""
        path = self._snapshot
        if not path.is_file():
            return None
        try:
            mirror, meta = VectorMirror.load(path, self.dim)
            ok = (meta.get("collection") == self.collection and meta.get("model") == self.model
                  and meta.get("schema") == SCHEMA_VERSION and len(mirror) == self._count_rows(""))
            if ok:
                sample = mirror.sample_ids(MIRROR_CHECK_ROWS)
                held = mirror.rows(sample)
                found = self._call("query", self.collection, filter=_in("id", sample) if sample else "",
                                   output_fields=["file_id", "seg_start", "seg_end", "embedding"]) if sample else []
                ok = len(found) == len(sample)
                for r in found:
                    mine = held.get(r["id"])
                    vec = np.asarray(r["embedding"], np.float32)
                    vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
                    ok = ok and mine is not None and mine[0] == r["file_id"] and np.allclose(mine[1], vec, atol=1e-5) \
                        and np.allclose(mine[2], (r["seg_start"], r["seg_end"]), atol=1e-3)
            if ok:
                return mirror
        except StoreError:
            raise
        except Exception:  # unreadable or foreign: rebuilt below, never trusted
            pass
        path.unlink(missing_ok=True)
        return None

    def _before_write(self) -> VectorMirror | None:
        """A write is about to reach Milvus. On Lite its saved mirror is removed first, so that a
        crash in the middle of the write leaves no copy that disagrees with the collection; the
        mirror in memory (loaded from that copy if need be) takes the write too and is saved again
        later. (A Store made with mirror=False still keeps another Store's mirror in step.)"""
        if not self.is_lite:
            return None
        with self._lock:
            mirror = self._mirrors.get(self._mirror_key)
            if mirror is None and self.use_mirror:  # keep a saved copy in step (a fast load); with
                mirror = self._load_snapshot()      # none, the next search reads Milvus anyway
                if mirror is not None:
                    self._adopt(mirror, saved=True)
        if mirror is None:
            self._snapshot.unlink(missing_ok=True)
            return None
        with mirror._lock:
            mirror.generation += 1  # a save in flight gives up
            self._snapshot.unlink(missing_ok=True)
        return mirror

    @classmethod
    def save_mirrors(cls) -> int:
        """Save every mirror of this process that changed since it was loaded or saved; returns how
        many were written. Called after indexing, by the app's housekeeper, at close and at exit."""
        written = 0
        for (uri, _), mirror in list(cls._mirrors.items()):
            generation = mirror.generation
            if generation == mirror.saved_generation or mirror.snapshot is None or not Path(uri).exists():
                continue  # unchanged, or its library is gone (a temporary one, removed)
            try:
                if mirror.save(mirror.snapshot, mirror.meta):
                    mirror.saved_generation = generation
                    written += 1
            except OSError:
                pass  # a full or read-only disk: the next start reads the vectors from Milvus
        return written

    # -- reads ----------------------------------------------------------------------------------
    def count(self) -> int:
        """Files in the library (not segments). On Lite the mirror counts: Lite answers count(*)
        by scanning every row (seconds at 100k rows)."""
        if self.use_mirror:
            return self._mirror().files
        return self._count_rows("seg == 0")

    def count_segments(self) -> int:
        if self.use_mirror:
            return len(self._mirror())
        return self._count_rows("")

    def _count_rows(self, flt: str) -> int:
        res = self._call("query", self.collection, filter=flt, output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[dict]:
        """File metadata by file id (`id` is the file id); `embedding` is the mean of its segments.
        Rows are fetched by primary key (every file has a segment 0; on Lite the mirror names the
        other segments): a `file_id in [...]` filter makes Lite scan every row."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        if not ids:
            return []
        mirror = self._mirror() if self.use_mirror and with_vectors else None
        out: list[dict] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            fields = FILE_FIELDS + (["tags"] if self.has_tags else []) + (["seg", "embedding"] if with_vectors else [])
            if not with_vectors:
                flt = _in("id", [row_id(f, 0) for f in chunk])
            elif mirror is not None:
                flt = _in("id", mirror.row_ids_of(chunk) or ["-"])
            else:
                flt = _in("file_id", chunk)
            rows = self._call("query", self.collection, filter=flt, output_fields=fields)
            by_file: dict[str, list[dict]] = {}
            for r in rows:
                by_file.setdefault(r["file_id"], []).append(dict(r))
            for fid in chunk:
                segs = by_file.get(fid)
                if not segs:
                    continue
                first = min(segs, key=lambda r: r.get("seg", 0))
                row = {k: first[k] for k in FILE_FIELDS}
                row["id"] = fid
                row["tags"] = json.loads(first["tags"]) if first.get("tags") else None
                if with_vectors:
                    mean = np.mean([np.asarray(s["embedding"], np.float32) for s in segs], axis=0)
                    row["embedding"] = mean / max(float(np.linalg.norm(mean)), 1e-12)
                    row["segments"] = len(segs)
                out.append(row)
        return out

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {r["id"] for r in self.get(list(ids))}

    def ids_for_path(self, path: str) -> list[str]:
        return self.ids_for_paths([path]).get(path, [])

    def ids_for_paths(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """{path: file ids stored for it} for many paths, in a few `path in [...]` queries."""
        out: dict[str, list[str]] = {}
        paths = list(dict.fromkeys(paths))
        for start in range(0, len(paths), 200):
            flt = _in("path", paths[start : start + 200]) + " and seg == 0"
            for r in self._call("query", self.collection, filter=flt, output_fields=["file_id", "path"]):
                out.setdefault(r["path"], []).append(r["file_id"])
        return out

    def iterate(self, fields: Sequence[str] = ("id", *FILE_FIELDS[1:]), batch: int = 1000, filter: str = "", *, files_only: bool = True):
        """Every file (one row each, `id` = file id), or every segment row with files_only=False."""
        fields = list(fields)
        want_id = "id" in fields
        if files_only:
            fields = [f for f in fields if f != "id"] + ["file_id"]
            filter = _and(filter, "seg == 0")
        started = False
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                it = self._call("query_iterator", self.collection, batch_size=batch, filter=filter, output_fields=fields)
                try:
                    while rows := it.next():
                        for r in rows:
                            started = True
                            r = dict(r)
                            if files_only and want_id:
                                r["id"] = r["file_id"]
                            yield r
                finally:
                    it.close()
                return
            except StoreError:
                raise
            except Exception as exc:
                # A broken channel before the first row: start again; after it, rows were already given out.
                if started or not is_connection_error(exc) or attempt == len(RETRY_DELAYS):
                    if is_connection_error(exc):
                        raise StoreError(f"Lost the connection to Milvus at {self.where} while reading") from None
                    raise
                time.sleep(RETRY_DELAYS[attempt])
                self._reconnect(self.client)

    def segment_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every segment as (file id of each, unit vectors): from the mirror on Lite (reading them
        back from Lite takes seconds at 10k rows), else from Milvus."""
        if self.use_mirror:
            return self._mirror().all_rows()
        files, vecs = [], []
        for r in self.iterate(("file_id", "embedding"), batch=2000, files_only=False):
            files.append(r["file_id"])
            vecs.append(np.asarray(r["embedding"], np.float32))
        return files, np.asarray(vecs, np.float32).reshape(-1, self.dim)

    def sample_rows(self, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        """Up to n segment rows as (file id of each, unit vectors): a random sample on Lite (from
        the mirror), the first n the iterator gives on a server."""
        if self.use_mirror:
            rows = self._mirror().rows(self._mirror().sample_ids(n, seed))
            files = [f for f, _, _ in rows.values()]
            return files, np.asarray([v for _, v, _ in rows.values()], np.float32).reshape(-1, self.dim)
        files, vecs = [], []
        for r in self.iterate(("file_id", "embedding"), batch=min(n, 2000), files_only=False):
            files.append(r["file_id"])
            vecs.append(np.asarray(r["embedding"], np.float32))
            if len(files) >= n:
                break
        mat = np.asarray(vecs, np.float32).reshape(-1, self.dim)
        return files, mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.iterate(("id", "label")):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return dict(sorted(counts.items()))

    def _hits(self, found: list[RowHit]) -> list[Hit]:
        meta = {r["id"]: r for r in self.get([h.file_id for h in found])}
        return [
            Hit(id=h.file_id, score=float(min(1.0, max(0.0, h.score))), path=meta[h.file_id]["path"], name=meta[h.file_id]["name"],
                label=meta[h.file_id]["label"], duration=float(meta[h.file_id]["duration"]), start=h.start, end=h.end,
                tags=meta[h.file_id]["tags"])
            for h in found
            if h.file_id in meta
        ]

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vecs = np.asarray(vectors, dtype=np.float32)
        vecs = vecs.reshape(1, -1) if vecs.ndim == 1 else vecs
        if vecs.shape[1] != self.dim:
            raise StoreError(f"query vector has dim {vecs.shape[1]}, collection expects {self.dim}")
        return vecs

    def search(
        self,
        vector: np.ndarray,
        top_k: int = 5,
        *,
        label: str | None = None,
        max_duration: float | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[Hit]:
        """Top-k files by their best segment, with that segment's start/end."""
        return self._hits(self.search_rows(vector, top_k, label=label, max_duration=max_duration, exclude_ids=exclude_ids)[0])

    def search_rows(
        self,
        vectors: np.ndarray,
        top_k: int = 5,
        *,
        label: str | None = None,
        max_duration: float | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[list[RowHit]]:
        """For each query vector, the top-k files (best segment each), without file metadata.
        Many vectors at once is how a scan searches its windows."""
        vecs = self._check(vectors)
        top_k = max(1, min(int(top_k), 16384 - len(exclude_ids)))
        flt = build_filter(label=label, max_duration=max_duration)
        if self.use_mirror:
            allowed = None
            if flt:
                allowed = {r["id"] for r in self.iterate(("id",), filter=flt, batch=4000, files_only=False)}
            return self._mirror().search_many(vecs, top_k, allowed=allowed, exclude_files=exclude_ids)
        skip = set(exclude_ids)
        out: list[list[RowHit]] = []
        for vec in vecs:
            limit = min(16384, max(4 * top_k, top_k + 64) + len(skip))
            while True:
                res = self._call(
                    "search", self.collection, data=[vec.tolist()], limit=limit, filter=flt,
                    output_fields=["file_id", "seg_start", "seg_end"], search_params={"metric_type": "COSINE", "params": {"ef": max(64, limit)}},
                )[0]
                best: dict[str, RowHit] = {}
                for h in res:
                    e = h["entity"]
                    fid = e["file_id"]
                    if fid in skip or fid in best:
                        continue
                    best[fid] = RowHit(fid, h["id"], float(h["distance"]), round(float(e["seg_start"]), 3), round(float(e["seg_end"]), 3))
                if len(best) >= top_k or len(res) < limit or limit >= 16384:
                    break
                limit = min(16384, limit * 4)
            out.append(sorted(best.values(), key=lambda r: -r.score)[:top_k])
        return out
