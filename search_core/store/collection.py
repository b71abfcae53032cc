"""`Store`: one model's collection in one library, as the rest of the engine uses it.

A small class that composes the package's parts: a healing `Connection`, the schema check on
open, the Lite mirror (`MirrorKeeper`), and the collection's `Reads` and `Writes`. Its methods are
the store's whole public surface; each is one line that says which part answers.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import schema, snapshot
from .connection import Connection
from .mirror import RowHit
from .reads import Reads
from .records import Hit, Record
from .schema import FILE_FIELDS, Bound
from .snapshot import MirrorKeeper
from .writes import Writes


class Store:
    """A Milvus collection bound to one model; created on first use, verified on reopen."""

    _mirrors = snapshot.MIRRORS  # Lite: this process's mirrors, shared by every Store object

    def __init__(self, uri: str, collection: str, model: str, dim: int, token: str | None = None, *,
                 mirror: bool = True, grpc_options: dict | None = None):
        self.conn = Connection(uri, token, grpc_options)
        self.bound = Bound(self.conn, collection, model, int(dim))
        self.use_mirror = mirror and self.conn.is_lite
        keeper = MirrorKeeper(self.conn, collection, model, int(dim)) if self.conn.is_lite else None
        self.keeper = keeper
        self.reads = Reads(self.bound, keeper if self.use_mirror else None)
        self.writes = Writes(self.bound, keeper, self.reads, load_saved=self.use_mirror)
        self.conn.client  # connect now: a bad URI fails here, with a clear message
        self.ensure()

    # -- what it is bound to --------------------------------------------------------------------
    uri = property(lambda self: self.conn.uri)
    token = property(lambda self: self.conn.token)
    collection = property(lambda self: self.bound.name)
    model = property(lambda self: self.bound.model)
    dim = property(lambda self: self.bound.dim)
    has_tags = property(lambda self: self.bound.has_tags)
    is_lite = property(lambda self: self.conn.is_lite)
    where = property(lambda self: self.conn.where)
    client = property(lambda self: self.conn.client)

    def ensure(self) -> None:
        """Open the collection (checking model, dim and schema version), or create it."""
        with self.bound.lock:
            if self.conn.call("has_collection", self.collection):
                self.bound.has_tags = schema.verify(self.conn, self.collection, self.model, self.dim)
                self.conn.call("load_collection", self.collection)  # reopened Lite collections start released
                return
            schema.create(self.conn, self.collection, self.model, self.dim)
            self.bound.has_tags = True
            if self.use_mirror:  # new and empty: the mirror starts complete, upserts keep it so
                self.keeper.start_empty()

    # -- writes ---------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record]) -> int:
        return self.writes.upsert(records)

    def delete(self, ids: Iterable[str] = (), *, path: str | None = None, settle: bool = True) -> int:
        return self.writes.delete(ids, path=path, settle=settle)

    def settle(self) -> None:
        self.writes.settle()

    def drop(self) -> None:
        self.writes.drop()

    # -- reads ----------------------------------------------------------------------------------
    def count(self) -> int:
        return self.reads.count()

    def count_segments(self) -> int:
        return self.reads.count_segments()

    def label_counts(self) -> dict[str, int]:
        return self.reads.label_counts()

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[dict]:
        return self.reads.get(ids, with_vectors=with_vectors)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return self.reads.existing_ids(ids)

    def ids_for_path(self, path: str) -> list[str]:
        return self.reads.ids_for_paths([path]).get(path, [])

    def ids_for_paths(self, paths: Sequence[str]) -> dict[str, list[str]]:
        return self.reads.ids_for_paths(paths)

    def iterate(self, fields: Sequence[str] = ("id", *FILE_FIELDS[1:]), batch: int = 1000, filter: str = "", *, files_only: bool = True):
        return self.reads.iterate(fields, batch, filter, files_only=files_only)

    def segment_vectors(self) -> tuple[list[str], np.ndarray]:
        return self.reads.segment_vectors()

    def sample_rows(self, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        return self.reads.sample_rows(n, seed)

    def search(self, vector: np.ndarray, top_k: int = 5, *, label: str | None = None, max_duration: float | None = None,
               exclude_ids: Sequence[str] = ()) -> list[Hit]:
        """Top-k files by their best segment, with that segment's start/end."""
        return self.reads.hits(self.search_rows(vector, top_k, label=label, max_duration=max_duration, exclude_ids=exclude_ids)[0])

    def search_rows(self, vectors: np.ndarray, top_k: int = 5, *, label: str | None = None, max_duration: float | None = None,
                    exclude_ids: Sequence[str] = ()) -> list[list[RowHit]]:
        return self.reads.search_rows(vectors, top_k, label=label, max_duration=max_duration, exclude_ids=exclude_ids)

    # -- the process's connections and mirrors ---------------------------------------------------
    @staticmethod
    def save_mirrors() -> int:
        return snapshot.save_all()

    @staticmethod
    def close_all() -> None:
        """Close every shared client and stop this process's Milvus Lite servers, so their files
        are free for other processes (tests, shutdown, a benchmark handing a library to the CLI).
        Changed mirrors are saved first, so the next process starts fast."""
        snapshot.save_all()
        lite = Connection.close_all()
        snapshot.MIRRORS.clear()
        if lite:
            from milvus_lite.server_manager import server_manager_instance

            for uri in lite:
                server_manager_instance.release_server(uri)

    @staticmethod
    def drop_collection(uri: str, collection: str, token: str | None = None) -> int | None:
        """Drop a collection whatever model or schema it holds (re-indexing an old library).
        Returns how many sounds it held, or None when there was no such collection."""
        conn = Connection(uri, token)
        if conn.is_lite:
            snapshot.forget(uri, collection)
        return schema.drop_any(conn, collection)
