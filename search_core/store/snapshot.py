"""Milvus Lite's search mirror (mirror.py), kept in step with its collection and saved beside it.

A Lite file is owned by one process, so that process holds every vector of a collection in memory
for exact search; this module keeps one such mirror per (file, collection) for the whole process,
so writes through any Store object are seen by all. Reading every vector back out of Lite takes
minutes at 100k rows, so the mirror is saved next to the library (`<db>.mirror/<collection>.npz`)
and trusted on the next start only if it matches the collection: same collection, model and schema,
as many rows as Milvus holds, and a random sample of rows identical to Milvus's. Before any write
reaches Milvus the saved copy is removed, so a crash mid-write never leaves a copy that disagrees.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .connection import Connection, StoreError
from .mirror import VectorMirror
from .schema import SCHEMA_VERSION, one_of

MIRROR_CHECK_ROWS = 32  # rows of a saved mirror compared with Milvus before it is trusted

# The process's mirrors, one per (Lite file, collection). Emptied by Store.close_all().
MIRRORS: dict[tuple[str, str], VectorMirror] = {}
_exit_hook: list[bool] = []


def snapshot_path(uri: str, collection: str) -> Path:
    """The saved copy of a collection's mirror, beside the Lite file."""
    return Path(f"{uri}.mirror") / f"{collection}.npz"


def save_all() -> int:
    """Save every mirror of this process that changed since it was loaded or saved; returns how
    many were written. Called after indexing, by the app's housekeeper, at close and at exit."""
    written = 0
    for (uri, _), mirror in list(MIRRORS.items()):
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


def _save_at_exit() -> None:
    """Once per process: save changed mirrors when the interpreter exits normally."""
    if not _exit_hook:
        import atexit

        atexit.register(save_all)
        _exit_hook.append(True)


def forget(uri: str, collection: str) -> None:
    """Drop a collection's mirror and its saved copy (the collection goes, or may disagree)."""
    mirror = MIRRORS.pop((uri, collection), None)
    if mirror is not None:
        with mirror._lock:
            mirror.retired = True  # a save in flight, or one about to start, gives up
    snapshot_path(uri, collection).unlink(missing_ok=True)


class MirrorKeeper:
    """The mirror of one Lite collection: found, loaded from its saved copy, or read from Milvus."""

    def __init__(self, conn: Connection, collection: str, model: str, dim: int):
        self.conn, self.collection, self.model, self.dim = conn, collection, model, dim
        self.key = (conn.uri, collection)
        self.path = snapshot_path(conn.uri, collection)

    def current(self) -> VectorMirror | None:
        return MIRRORS.get(self.key)

    def get(self, read_rows: Callable[[], Iterable[dict]]) -> VectorMirror:
        """The mirror: from its saved copy when that matches the collection, else every row that
        `read_rows` gives (then kept in step by the writes, and saved again)."""
        mirror = MIRRORS.get(self.key)
        if mirror is not None:
            return mirror
        mirror = self.load()
        if mirror is not None:
            self.adopt(mirror, saved=True)
            return mirror
        mirror = VectorMirror(self.dim)
        rows: list[dict] = []
        for row in read_rows():
            rows.append(row)
            if len(rows) >= 10000:
                mirror.upsert_rows(rows)
                rows.clear()
        if rows:
            mirror.upsert_rows(rows)
        self.adopt(mirror, saved=False)
        return mirror

    def start_empty(self) -> None:
        """A new, empty collection: its mirror starts complete (a copy left by a dropped namesake goes)."""
        self.path.unlink(missing_ok=True)
        self.adopt(VectorMirror(self.dim), saved=False)

    def adopt(self, mirror: VectorMirror, *, saved: bool) -> None:
        mirror.saved_generation = mirror.generation if saved else -1
        mirror.snapshot, mirror.meta = self.path, {"collection": self.collection, "model": self.model, "schema": SCHEMA_VERSION}
        MIRRORS[self.key] = mirror
        _save_at_exit()

    def load(self) -> VectorMirror | None:
        """The saved mirror, only if it matches the collection (see the module's docstring).
        Anything else (missing, truncated, stale, foreign) is None, and the copy is removed."""
        if not self.path.is_file():
            return None
        try:
            mirror, meta = VectorMirror.load(self.path, self.dim)
            ok = (meta.get("collection") == self.collection and meta.get("model") == self.model
                  and meta.get("schema") == SCHEMA_VERSION and len(mirror) == self._rows_in_milvus())
            if ok:
                ok = self._sample_agrees(mirror)
            if ok:
                return mirror
        except StoreError:
            raise
        except Exception:  # unreadable or foreign: rebuilt by the caller, never trusted
            pass
        self.path.unlink(missing_ok=True)
        return None

    def _rows_in_milvus(self) -> int:
        res = self.conn.call("query", self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def _sample_agrees(self, mirror: VectorMirror) -> bool:
        sample = mirror.sample_ids(MIRROR_CHECK_ROWS)
        if not sample:
            return True
        held = mirror.rows(sample)
        found = self.conn.call("query", self.collection, filter=one_of("id", sample),
                               output_fields=["file_id", "seg_start", "seg_end", "embedding"])
        ok = len(found) == len(sample)
        for r in found:
            mine = held.get(r["id"])
            vec = np.asarray(r["embedding"], np.float32)
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
            ok = ok and mine is not None and mine[0] == r["file_id"] and np.allclose(mine[1], vec, atol=1e-5) \
                and np.allclose(mine[2], (r["seg_start"], r["seg_end"]), atol=1e-3)
        return ok

    def before_write(self, *, load_saved: bool) -> VectorMirror | None:
        """A write is about to reach Milvus: its saved copy is removed first, so that a crash in the
        middle of the write leaves no copy that disagrees with the collection; the mirror in memory
        (loaded from that copy if `load_saved`) takes the write too and is saved again later."""
        mirror = MIRRORS.get(self.key)
        if mirror is None and load_saved:  # keep a saved copy in step (a fast load); with
            mirror = self.load()           # none, the next search reads Milvus anyway
            if mirror is not None:
                self.adopt(mirror, saved=True)
        if mirror is None:
            self.path.unlink(missing_ok=True)
            return None
        with mirror._lock:
            mirror.generation += 1  # a save in flight gives up
            self.path.unlink(missing_ok=True)
        return mirror

    def forget(self) -> None:
        forget(*self.key)
