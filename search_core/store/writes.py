"""Writes to a collection: upsert files (all their segments), delete files, settle, drop.

A file's sha256 is its identity: storing it again replaces its rows (and removes segments it no
longer has), so indexing twice never stores a file twice. On Lite every write goes to the mirror
too, and the mirror is forgotten if a write fails half-way (some batches may have landed).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .connection import StoreError
from .mirror import VectorMirror
from .records import Record
from .reads import Reads
from .schema import PATH_MAX, TEXT_MAX, Bound, clean_text, one_of, row_id, tags_json
from .snapshot import MirrorKeeper


class Writes:
    def __init__(self, bound: Bound, keeper: MirrorKeeper | None, reads: Reads, *, load_saved: bool):
        self.b = bound
        self.keeper = keeper  # Lite: keeps any mirror of this collection in step (None on a server)
        self.reads = reads
        self.load_saved = load_saved  # whether a saved mirror is loaded to be kept in step

    def rows(self, r: Record) -> list[dict]:
        """A file's rows, one per segment, checked against the collection's dim."""
        vecs = np.asarray(r.embedding, dtype=np.float32)
        vecs = vecs.reshape(1, -1) if vecs.ndim == 1 else vecs
        spans = list(r.spans) if r.spans is not None else [(0.0, float(r.duration))]
        if vecs.shape[1:] != (self.b.dim,) or len(spans) != vecs.shape[0] or not np.all(np.isfinite(vecs)):
            raise StoreError(f"bad embedding for {r.name}: shape {vecs.shape}, dim {self.b.dim} and {len(spans)} segments expected")
        meta = {
            "file_id": r.id,
            "path": clean_text(r.path, PATH_MAX),
            "name": clean_text(r.name, TEXT_MAX),
            "label": clean_text(r.label, TEXT_MAX),
            "duration": float(r.duration),
            "sample_rate": int(r.sample_rate),
            "indexed_at": float(r.indexed_at),
        }
        if self.b.has_tags:
            meta["tags"] = tags_json(r.tags)
        return [
            {"id": row_id(r.id, i), "seg": i, "seg_start": float(s), "seg_end": float(e), "embedding": v.tolist(), **meta}
            for i, (v, (s, e)) in enumerate(zip(vecs, spans))
        ]

    def upsert(self, records: Sequence[Record]) -> int:
        """Store files (all their segments); returns the number of files."""
        if not records:
            return 0
        rows = [row for r in records for row in self.rows(r)]
        with self.b.lock:
            mirror = self._before_write()
            try:
                # A file stored again with fewer segments must not keep its old extra ones.
                new = {row["id"] for row in rows}
                stale = [i for i in self.segment_ids([r.id for r in records], mirror) if i not in new]
                if stale:
                    self._delete_rows(stale)
                for start in range(0, len(rows), 512):
                    self.b.conn.call("upsert", self.b.name, rows[start : start + 512])
            except BaseException:
                self._forget_mirror()  # some batches may have landed: the copy no longer knows
                raise
            if mirror is not None:
                mirror.upsert_rows(rows)
        return len(records)

    def segment_ids(self, file_ids: Sequence[str], mirror: VectorMirror | None = None) -> list[str]:
        """Row ids of these files' segments. Lite filters by scanning every row (each query costs
        more as the library grows: indexing became quadratic), so a mirror that is in step with the
        collection answers instead; a server's query uses its scalar index."""
        if mirror is not None:
            return mirror.row_ids_of(file_ids)
        out: list[str] = []
        for start in range(0, len(file_ids), 200):
            chunk = list(file_ids[start : start + 200])
            out += [r["id"] for r in self.b.conn.call("query", self.b.name, filter=one_of("file_id", chunk), output_fields=["id"])]
        return out

    def _delete_rows(self, ids: Sequence[str]) -> None:
        mirror = self._before_write()
        try:
            for start in range(0, len(ids), 500):
                self.b.conn.call("delete", self.b.name, ids=list(ids[start : start + 500]))
        except BaseException:
            self._forget_mirror()
            raise
        if mirror is not None:
            mirror.delete(ids)

    def delete(self, ids: Iterable[str] = (), *, path: str | None = None, settle: bool = True) -> int:
        """Delete files (every segment) by file id and/or path; returns the number of files deleted.
        Settled (visible to every reader) when it returns, unless the caller settles later."""
        ids = [str(i) for i in ids]
        with self.b.lock:
            if path is not None:
                ids += self.reads.ids_for_paths([path]).get(path, [])
            files = sorted(self.reads.existing_ids(ids)) if ids else []
            if not files:
                return 0
            self._delete_rows(self.segment_ids(files, self.keeper.current() if self.keeper is not None else None))
            if settle:
                self.settle()
            return len(files)

    def settle(self) -> None:
        """Wait until every write made so far is visible to every reader, in any process: on a
        server one Strong read (it waits for the time tick that covers the writes, ~200 ms); Lite
        is always settled. Called when an indexing run or a delete ends, not per batch."""
        if not self.b.conn.is_lite:
            self.b.conn.call("query", self.b.name, filter="seg == 0", output_fields=["count(*)"], consistency_level="Strong")

    def drop(self) -> None:
        with self.b.lock:
            self._forget_mirror()
            if self.b.conn.call("has_collection", self.b.name):
                self.b.conn.call("drop_collection", self.b.name)

    def _before_write(self) -> VectorMirror | None:
        if self.keeper is None:
            return None
        with self.b.lock:
            return self.keeper.before_write(load_saved=self.load_saved)

    def _forget_mirror(self) -> None:
        """The mirror may disagree with Milvus (a write failed half-way, or the collection goes):
        dropped, with its saved copy; the next search reads the vectors from Milvus again."""
        if self.keeper is not None:
            self.keeper.forget()
