"""Vectors and their metadata in Milvus: Milvus Lite (a local .db file) by default, any Milvus
server or cluster when a URI is set. One collection per (library, model), so vectors of different
models never mix; the model name and dim are stored as collection properties and checked on open.

Filters are built here from typed values only (quoted with JSON escaping), never from raw text.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .mirror import VectorMirror
from .settings import is_lite_uri

ID_MAX = 80
PATH_MAX = 2048
TEXT_MAX = 512
OUTPUT_FIELDS = ["path", "name", "label", "duration", "sample_rate", "indexed_at"]


class StoreError(RuntimeError):
    """The vector store refused an operation; the message is for people."""


@dataclass
class Record:
    id: str  # sha256 of the file's bytes
    embedding: np.ndarray
    path: str
    name: str
    label: str
    duration: float
    sample_rate: int
    indexed_at: float


@dataclass
class Hit:
    id: str
    score: float  # cosine similarity clipped to [0, 1]; higher is closer
    path: str
    name: str
    label: str
    duration: float


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


class Store:
    """A Milvus collection bound to one model; created on first use, verified on reopen."""

    # Lite allows one client per .db file per process: share it, keyed by URI.
    _clients: dict[str, object] = {}
    _clients_lock = threading.Lock()
    # Lite only: exact in-process search (see mirror.py), one per (file, collection), shared by
    # every Store object of this process so writes through any of them are seen by all.
    _mirrors: dict[tuple[str, str], VectorMirror] = {}

    def __init__(self, uri: str, collection: str, model: str, dim: int, token: str | None = None, *, mirror: bool = True):
        self.uri = uri
        self.collection = collection
        self.model = model
        self.dim = int(dim)
        self.token = token
        self.use_mirror = mirror and self.is_lite
        self.client = self._client(uri, token)
        self._lock = threading.RLock()
        self.ensure()

    @classmethod
    def _client(cls, uri: str, token: str | None):
        from pymilvus import MilvusClient

        # pymilvus warns on every Lite query_iterator (no server-side mvcc ts); that is expected.
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        key = f"{uri}|{token or ''}"
        with cls._clients_lock:
            if key not in cls._clients:
                if is_lite_uri(uri):
                    Path(uri).parent.mkdir(parents=True, exist_ok=True)
                try:
                    cls._clients[key] = MilvusClient(uri, token=token or "")
                except Exception as exc:
                    raise StoreError(f"Cannot open Milvus at {uri} ({str(exc).splitlines()[0]})") from None
            return cls._clients[key]

    @classmethod
    def close_all(cls) -> None:
        """Close every shared client (tests, shutdown)."""
        with cls._clients_lock:
            for client in cls._clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            cls._clients.clear()
            cls._mirrors.clear()

    # -- schema ---------------------------------------------------------------------------------
    def ensure(self) -> None:
        from pymilvus import DataType, MilvusClient

        with self._lock:
            if self.client.has_collection(self.collection):
                self._verify()
                self.client.load_collection(self.collection)  # reopened Lite collections start released
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
            schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
            schema.add_field("name", DataType.VARCHAR, max_length=TEXT_MAX)
            schema.add_field("label", DataType.VARCHAR, max_length=TEXT_MAX)
            schema.add_field("duration", DataType.FLOAT)
            schema.add_field("sample_rate", DataType.INT64)
            schema.add_field("indexed_at", DataType.DOUBLE)
            index = self.client.prepare_index_params()
            # Exact search in Lite (FLAT); a server gets HNSW, which scales past one machine.
            if self.is_lite:
                index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
            else:
                index.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
            self.client.create_collection(
                self.collection,
                schema=schema,
                index_params=index,
                properties={"soundalike.model": self.model, "soundalike.dim": str(self.dim)},
            )
            self.client.load_collection(self.collection)
            if self.use_mirror:  # new and empty: the mirror starts complete, upserts keep it so
                self._mirrors[self._mirror_key] = VectorMirror(self.dim)

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.uri)

    def _verify(self) -> None:
        desc = self.client.describe_collection(self.collection)
        props = desc.get("properties") or {}
        model = props.get("soundalike.model")
        dim = None
        for f in desc.get("fields", []):
            if f.get("name") == "embedding":
                dim = int((f.get("params") or {}).get("dim", 0))
        if model != self.model or dim != self.dim:
            raise StoreError(
                f"Collection {self.collection!r} holds {model or 'unknown'} vectors of dim {dim}, "
                f"not {self.model} (dim {self.dim}); use another collection or re-index."
            )

    # -- writes ---------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record]) -> int:
        if not records:
            return 0
        rows = []
        for r in records:
            vec = np.asarray(r.embedding, dtype=np.float32)
            if vec.shape != (self.dim,) or not np.all(np.isfinite(vec)):
                raise StoreError(f"bad embedding for {r.name}: shape {vec.shape}, dim {self.dim} expected")
            rows.append(
                {
                    "id": r.id,
                    "embedding": vec.tolist(),
                    "path": _clean_text(r.path, PATH_MAX),
                    "name": _clean_text(r.name, TEXT_MAX),
                    "label": _clean_text(r.label, TEXT_MAX),
                    "duration": float(r.duration),
                    "sample_rate": int(r.sample_rate),
                    "indexed_at": float(r.indexed_at),
                }
            )
        with self._lock:
            self.client.upsert(self.collection, rows)
            mirror = self._mirrors.get(self._mirror_key)
            if mirror is not None:
                mirror.upsert([r.id for r in records], np.stack([np.asarray(r.embedding, np.float32) for r in records]))
        return len(rows)

    def delete(self, ids: Iterable[str] = (), *, path: str | None = None) -> int:
        ids = [str(i) for i in ids]
        with self._lock:
            if path is not None:
                ids += self.ids_for_path(path)
            if not ids:
                return 0
            before = self.count()
            self.client.delete(self.collection, ids=ids)
            mirror = self._mirrors.get(self._mirror_key)
            if mirror is not None:
                mirror.delete(ids)
            return before - self.count()

    def drop(self) -> None:
        with self._lock:
            self._mirrors.pop(self._mirror_key, None)
            if self.client.has_collection(self.collection):
                self.client.drop_collection(self.collection)

    # -- the Lite search mirror ------------------------------------------------------------------
    @property
    def _mirror_key(self) -> tuple[str, str]:
        return (self.uri, self.collection)

    def _mirror(self) -> VectorMirror:
        """Load every vector once (then kept in step by upsert/delete/drop)."""
        with self._lock:
            mirror = self._mirrors.get(self._mirror_key)
            if mirror is None:
                mirror = VectorMirror(self.dim)
                ids, vecs = [], []
                for row in self.iterate(("id", "embedding"), batch=2000):
                    ids.append(row["id"])
                    vecs.append(row["embedding"])
                    if len(ids) >= 10000:
                        mirror.upsert(ids, np.asarray(vecs, np.float32))
                        ids, vecs = [], []
                if ids:
                    mirror.upsert(ids, np.asarray(vecs, np.float32))
                self._mirrors[self._mirror_key] = mirror
            return mirror

    # -- reads ----------------------------------------------------------------------------------
    def count(self) -> int:
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[dict]:
        if not ids:
            return []
        fields = ["id"] + OUTPUT_FIELDS + (["embedding"] if with_vectors else [])
        out = []
        for start in range(0, len(ids), 500):
            out.extend(self.client.get(self.collection, ids=list(ids[start : start + 500]), output_fields=fields))
        return [dict(r) for r in out]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {r["id"] for r in self.get(list(ids))}

    def ids_for_path(self, path: str) -> list[str]:
        return self.ids_for_paths([path]).get(path, [])

    def ids_for_paths(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """{path: ids stored for it} for many paths, in a few `path in [...]` queries (not one per file)."""
        out: dict[str, list[str]] = {}
        paths = list(dict.fromkeys(paths))
        for start in range(0, len(paths), 200):
            chunk = paths[start : start + 200]
            flt = "path in [" + ", ".join(quote(p) for p in chunk) + "]"
            for r in self.client.query(self.collection, filter=flt, output_fields=["id", "path"]):
                out.setdefault(r["path"], []).append(r["id"])
        return out

    def iterate(self, fields: Sequence[str] = ("id", *OUTPUT_FIELDS), batch: int = 1000, filter: str = ""):
        """Every row (matching `filter`, built by build_filter), in pages."""
        it = self.client.query_iterator(self.collection, batch_size=batch, filter=filter, output_fields=list(fields))
        try:
            while rows := it.next():
                yield from (dict(r) for r in rows)
        finally:
            it.close()

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.iterate(("id", "label")):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return dict(sorted(counts.items()))

    def search(
        self,
        vector: np.ndarray,
        top_k: int = 5,
        *,
        label: str | None = None,
        max_duration: float | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[Hit]:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape != (self.dim,):
            raise StoreError(f"query vector has dim {vec.shape[0]}, collection expects {self.dim}")
        top_k = max(1, min(int(top_k), 16384 - len(exclude_ids)))
        flt = build_filter(label=label, max_duration=max_duration)
        if self.use_mirror:
            allowed = None
            if flt:
                allowed = {r["id"] for r in self.iterate(("id",), filter=flt, batch=4000)}
            ranked = self._mirror().search(vec, top_k, allowed=allowed, exclude=exclude_ids)
            meta = {r["id"]: r for r in self.get([i for i, _ in ranked])}
            return [
                Hit(id=i, score=float(min(1.0, max(0.0, score))), path=meta[i]["path"], name=meta[i]["name"],
                    label=meta[i]["label"], duration=float(meta[i]["duration"]))
                for i, score in ranked
                if i in meta
            ]
        res = self.client.search(
            self.collection,
            data=[vec.tolist()],
            limit=top_k + len(exclude_ids),
            filter=flt,
            output_fields=OUTPUT_FIELDS,
            search_params={"metric_type": "COSINE"},
        )
        skip = set(exclude_ids)
        hits = []
        for h in res[0]:
            if h["id"] in skip:
                continue
            e = h["entity"]
            hits.append(
                Hit(
                    id=h["id"],
                    score=float(min(1.0, max(0.0, h["distance"]))),
                    path=e["path"],
                    name=e["name"],
                    label=e["label"],
                    duration=float(e["duration"]),
                )
            )
        return hits[:top_k]

