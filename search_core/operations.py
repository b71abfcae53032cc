"""The command line's operations as JSON-able dicts: one contract wherever they run.

`python -m search_core` runs them on a Library in its own process, or, while a running app holds
the library file, asks that app to run the very same functions (its local endpoints, see
local_api.py). Either way the CLI prints the dict (`--json`) or formats it (text), so the output
cannot depend on where the work was done.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .indexer import Progress


def stats(lib) -> dict:
    return lib.stats()


def search(lib, file: str | Path | None = None, item_id: str | None = None, top_k: int = 5,
           label: str | None = None, max_duration: float | None = None) -> dict:
    """Search with a sound file, or with a library item's stored vector (more like this)."""
    if item_id:
        if file:
            raise ValueError("give a FILE or --id, not both")
        result = lib.similar_by_id(item_id, top_k)
    elif file:
        result = lib.similar(file, top_k, label=label, max_duration=max_duration)
    else:
        raise ValueError("give a FILE to search with, or --id ID of a library item (more like this)")
    sug = result.suggestion
    out = {"model": lib.model, "collection": lib.collection, "query_id": item_id,
           "suggested_label": sug.as_dict() if sug else None, "results": result.results()}
    if result.query_tags:  # only models that name classes (PANNs)
        out["query_tags"] = result.query_tags
    return out


def index(lib, paths: Sequence[str | Path], label: str | None = None, progress: Progress | None = None, shard=None) -> dict:
    report = lib.index(paths, default_label=label, progress=progress, shard=shard)
    return {"model": lib.model, "collection": lib.collection, **report.as_dict()}


def delete(lib, ids: Sequence[str] = (), path: str | None = None) -> dict:
    return {"deleted": lib.delete(list(ids), path=path)}


def scan(scanner, recording: str | Path, threshold: float, progress: Callable[[float, float], None] | None = None) -> dict:
    lib = scanner.library
    result = scanner.scan(recording, threshold=threshold, progress=progress)
    return {**result.as_dict(lib.model, lib.collection), "seconds": round(result.seconds, 2), "unverifiable": result.unverifiable}


def dupes(lib, threshold: float, delete_copies: bool = False, progress: Callable | None = None, find=None) -> dict:
    """Near-duplicate groups; with `delete_copies`, every copy but each group's keeper is deleted.
    `find(threshold, progress)` lets the app use its cached comparison."""
    if find is None:
        from .dupes import find_dupes

        def find(threshold, progress):
            return find_dupes(lib, threshold, progress=progress)
    result = find(threshold, progress)
    out = {**result.as_dict(lib.model, lib.collection), "unreadable": result.unreadable}
    if delete_copies:
        copies = result.copies
        if copies:
            lib.delete([it["id"] for it in copies])
        out["deleted"] = [it["name"] for it in copies]
    return out


class Runner:
    """The operations on a Library in this process: the CLI when no running app holds the file.
    Same methods and dicts as appclient.AppClient."""

    def __init__(self, lib):
        self.lib = lib
        self.model, self.collection, self.note = lib.model, lib.collection, lib.embedder.note

    def stats(self) -> dict:
        return stats(self.lib)

    def count(self) -> int:
        return self.lib.count()

    def search(self, file=None, item_id=None, top_k=5, label=None, max_duration=None) -> dict:
        return search(self.lib, file, item_id, top_k, label, max_duration)

    def index(self, paths, label=None, progress=None, shard=None) -> dict:
        return index(self.lib, paths, label, progress, shard)

    def delete(self, ids=(), path=None) -> dict:
        return delete(self.lib, ids, path)

    def scan(self, recording, threshold, progress=None) -> dict:
        from .scan import Scanner

        return scan(Scanner(self.lib), recording, threshold, (lambda d, t: progress(d, t, "")) if progress else None)

    def dupes(self, threshold, delete_copies=False, progress=None) -> dict:
        return dupes(self.lib, threshold, delete_copies, progress)

    def where(self) -> str:
        return ""
