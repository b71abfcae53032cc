"""Reads of a collection: counts, file metadata, iteration, and vector search.

On Lite, counts, vectors and search come from the in-process mirror (snapshot.py): Lite answers
count(*) and `file_id in [...]` by scanning every row, and its FLAT search is ~20x slower than a
matrix product. A server answers everything itself (HNSW, scalar indexes).
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from .connection import StoreError
from .mirror import RowHit, VectorMirror
from .records import Hit
from .schema import FILE_FIELDS, Bound, all_of, build_filter, one_of, row_id
from .snapshot import MirrorKeeper


class Reads:
    def __init__(self, bound: Bound, keeper: MirrorKeeper | None):
        self.b = bound
        self.keeper = keeper  # None: read Milvus itself (a server, or a Store made with mirror=False)

    def mirror(self) -> VectorMirror:
        """The collection's mirror (Lite): from its saved copy, else every row read once."""
        assert self.keeper is not None
        with self.b.lock:
            return self.keeper.get(lambda: self.iterate(("id", "file_id", "seg_start", "seg_end", "embedding"),
                                                        batch=2000, files_only=False))

    # -- counts ---------------------------------------------------------------------------------
    def count(self) -> int:
        """Files in the library (not segments). On Lite the mirror counts: Lite answers count(*)
        by scanning every row (seconds at 100k rows)."""
        if self.keeper is not None:
            return self.mirror().files
        return self.count_rows("seg == 0")

    def count_segments(self) -> int:
        if self.keeper is not None:
            return len(self.mirror())
        return self.count_rows("")

    def count_rows(self, flt: str) -> int:
        res = self.b.conn.call("query", self.b.name, filter=flt, output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.iterate(("id", "label")):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return dict(sorted(counts.items()))

    # -- files ----------------------------------------------------------------------------------
    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[dict]:
        """File metadata by file id (`id` is the file id); `embedding` is the mean of its segments.
        Rows are fetched by primary key (every file has a segment 0; on Lite the mirror names the
        other segments): a `file_id in [...]` filter makes Lite scan every row."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        if not ids:
            return []
        mirror = self.mirror() if self.keeper is not None and with_vectors else None
        out: list[dict] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            fields = FILE_FIELDS + (["tags"] if self.b.has_tags else []) + (["seg", "embedding"] if with_vectors else [])
            if not with_vectors:
                flt = one_of("id", [row_id(f, 0) for f in chunk])
            elif mirror is not None:
                flt = one_of("id", mirror.row_ids_of(chunk) or ["-"])
            else:
                flt = one_of("file_id", chunk)
            by_file: dict[str, list[dict]] = {}
            for r in self.b.conn.call("query", self.b.name, filter=flt, output_fields=fields):
                by_file.setdefault(r["file_id"], []).append(dict(r))
            out += [_file_row(fid, by_file[fid], with_vectors) for fid in chunk if by_file.get(fid)]
        return out

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {r["id"] for r in self.get(list(ids))}

    def ids_for_paths(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """{path: file ids stored for it} for many paths, in a few `path in [...]` queries."""
        out: dict[str, list[str]] = {}
        paths = list(dict.fromkeys(paths))
        for start in range(0, len(paths), 200):
            flt = one_of("path", paths[start : start + 200]) + " and seg == 0"
            for r in self.b.conn.call("query", self.b.name, filter=flt, output_fields=["file_id", "path"]):
                out.setdefault(r["path"], []).append(r["file_id"])
        return out

    def iterate(self, fields: Sequence[str] = ("id", *FILE_FIELDS[1:]), batch: int = 1000, filter: str = "", *, files_only: bool = True):
        """Every file (one row each, `id` = file id), or every segment row with files_only=False."""
        fields = list(fields)
        want_id = "id" in fields
        if files_only:
            fields = [f for f in fields if f != "id"] + ["file_id"]
            filter = all_of(filter, "seg == 0")
        for r in self.b.conn.query_rows(self.b.name, batch=batch, filter=filter, output_fields=fields):
            if files_only and want_id:
                r["id"] = r["file_id"]
            yield r

    # -- vectors --------------------------------------------------------------------------------
    def segment_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every segment as (file id of each, unit vectors): from the mirror on Lite (reading them
        back from Lite takes seconds at 10k rows), else from Milvus."""
        if self.keeper is not None:
            return self.mirror().all_rows()
        files, vecs = [], []
        for r in self.iterate(("file_id", "embedding"), batch=2000, files_only=False):
            files.append(r["file_id"])
            vecs.append(np.asarray(r["embedding"], np.float32))
        return files, np.asarray(vecs, np.float32).reshape(-1, self.b.dim)

    def sample_rows(self, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        """Up to n segment rows as (file id of each, unit vectors): a random sample on Lite (from
        the mirror), the first n the iterator gives on a server."""
        if self.keeper is not None:
            rows = self.mirror().rows(self.mirror().sample_ids(n, seed))
            files = [f for f, _, _ in rows.values()]
            return files, np.asarray([v for _, v, _ in rows.values()], np.float32).reshape(-1, self.b.dim)
        files, vecs = [], []
        for r in self.iterate(("file_id", "embedding"), batch=min(n, 2000), files_only=False):
            files.append(r["file_id"])
            vecs.append(np.asarray(r["embedding"], np.float32))
            if len(files) >= n:
                break
        mat = np.asarray(vecs, np.float32).reshape(-1, self.b.dim)
        return files, mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)

    # -- search ---------------------------------------------------------------------------------
    def hits(self, found: list[RowHit]) -> list[Hit]:
        """Search rows with their files' metadata (a file deleted meanwhile is left out)."""
        meta = {r["id"]: r for r in self.get([h.file_id for h in found])}
        return [
            Hit(id=h.file_id, score=float(min(1.0, max(0.0, h.score))), path=meta[h.file_id]["path"], name=meta[h.file_id]["name"],
                label=meta[h.file_id]["label"], duration=float(meta[h.file_id]["duration"]), start=h.start, end=h.end,
                tags=meta[h.file_id]["tags"])
            for h in found
            if h.file_id in meta
        ]

    def search_rows(self, vectors: np.ndarray, top_k: int = 5, *, label: str | None = None,
                    max_duration: float | None = None, exclude_ids: Sequence[str] = ()) -> list[list[RowHit]]:
        """For each query vector, the top-k files (best segment each), without file metadata.
        Many vectors at once is how a scan searches its windows."""
        vecs = self._check(vectors)
        top_k = max(1, min(int(top_k), 16384 - len(exclude_ids)))
        flt = build_filter(label=label, max_duration=max_duration)
        if self.keeper is not None:
            allowed = None
            if flt:
                allowed = {r["id"] for r in self.iterate(("id",), filter=flt, batch=4000, files_only=False)}
            return self.mirror().search_many(vecs, top_k, allowed=allowed, exclude_files=exclude_ids)
        return [self._server_search(vec, top_k, flt, set(exclude_ids)) for vec in vecs]

    def _server_search(self, vec: np.ndarray, top_k: int, flt: str, skip: set[str]) -> list[RowHit]:
        """HNSW search for rows, widened until it holds top_k distinct files."""
        limit = min(16384, max(4 * top_k, top_k + 64) + len(skip))
        while True:
            res = self.b.conn.call(
                "search", self.b.name, data=[vec.tolist()], limit=limit, filter=flt,
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
                return sorted(best.values(), key=lambda r: -r.score)[:top_k]
            limit = min(16384, limit * 4)

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vecs = np.asarray(vectors, dtype=np.float32)
        vecs = vecs.reshape(1, -1) if vecs.ndim == 1 else vecs
        if vecs.shape[1] != self.b.dim:
            raise StoreError(f"query vector has dim {vecs.shape[1]}, collection expects {self.b.dim}")
        return vecs


def _file_row(file_id: str, segs: list[dict], with_vectors: bool) -> dict:
    """One file's metadata from its segment rows (and their mean vector when asked)."""
    first = min(segs, key=lambda r: r.get("seg", 0))
    row = {k: first[k] for k in FILE_FIELDS}
    row["id"] = file_id
    row["tags"] = json.loads(first["tags"]) if first.get("tags") else None
    if with_vectors:
        mean = np.mean([np.asarray(s["embedding"], np.float32) for s in segs], axis=0)
        row["embedding"] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        row["segments"] = len(segs)
    return row
