"""`Library`: one model bound to one Milvus collection; what every front end calls.

Like llm's `Collection`: the collection remembers its model (checked on reopen), files are
deduplicated by content hash before embedding, and `search(value)` / `similar_by_id(id)` return
ranked results.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .embedders import get_embedder
from .indexer import Indexer, IndexReport, Progress
from .search import Query, load_query, search_vector
from .settings import Settings
from .store import Store, StoreError, collection_name


class Library:
    def __init__(self, settings: Settings | None = None, *, model: str | None = None, collection: str | None = None):
        self.settings = settings or Settings.from_env()
        self.embedder = get_embedder(self.settings, model)
        self.collection = collection or collection_name(self.settings.library, self.embedder.name)
        self.store = Store(self.settings.uri, self.collection, self.embedder.name, self.embedder.dim, self.settings.milvus_token)
        self._index_lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.embedder.name

    # -- writing ---------------------------------------------------------------------------------
    def index(
        self,
        paths: Iterable[str | Path],
        *,
        default_label: str | None = None,
        progress: Progress | None = None,
        names: dict[str, str] | None = None,
    ) -> IndexReport:
        """Index files/folders; one indexing job at a time per library (searches keep running)."""
        if not self._index_lock.acquire(blocking=False):
            raise StoreError("Another indexing job is running on this library; try again when it finishes.")
        try:
            return Indexer(self.store, self.embedder, self.settings).index(paths, default_label=default_label, progress=progress, names=names)
        finally:
            self._index_lock.release()

    @property
    def indexing(self) -> bool:
        return self._index_lock.locked()

    def delete(self, ids: Sequence[str] = (), *, path: str | None = None) -> int:
        return self.store.delete(ids, path=path)

    def clear(self) -> None:
        """Drop every vector of this library (and recreate the empty collection)."""
        self.store.drop()
        self.store.ensure()

    # -- reading ---------------------------------------------------------------------------------
    def embed_query(self, query: Query) -> np.ndarray:
        clip = load_query(query, self.embedder, self.settings)
        return self.embedder.embed_one(clip.samples)

    def search(self, query: Query, top_k: int = 5, *, label: str | None = None, max_duration: float | None = None) -> pd.DataFrame:
        return search_vector(self.store, self.embed_query(query), top_k, label=label, max_duration=max_duration)

    def similar_by_id(self, item_id: str, top_k: int = 5) -> pd.DataFrame:
        rows = self.store.get([item_id], with_vectors=True)
        if not rows:
            raise KeyError(item_id)
        return search_vector(self.store, np.asarray(rows[0]["embedding"], dtype=np.float32), top_k, exclude_ids=[item_id])

    def get(self, item_id: str) -> dict | None:
        rows = self.store.get([item_id])
        return rows[0] if rows else None

    def count(self) -> int:
        return self.store.count()

    def stats(self) -> dict:
        return {
            "model": self.model,
            "model_note": self.embedder.note,
            "dim": self.embedder.dim,
            "collection": self.collection,
            "uri": self.settings.uri if self.settings.is_lite else "milvus server",
            "count": self.count(),
            "labels": self.store.label_counts(),
        }

    def items(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.store.iterate()))

    def vectors(self) -> tuple[pd.DataFrame, np.ndarray]:
        """Metadata and embeddings of every item (for maps and evaluation)."""
        rows = list(self.store.iterate(("id", "name", "label", "path", "duration")))
        pos = {r["id"]: i for i, r in enumerate(rows)}
        emb = np.zeros((len(rows), self.embedder.dim), dtype=np.float32)
        for seg in self.store.iterate(("file_id", "embedding"), batch=2000, files_only=False):
            i = pos.get(seg["file_id"])
            if i is not None:  # a long file's vector is the mean of its segments'
                emb[i] += np.asarray(seg["embedding"], dtype=np.float32)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return pd.DataFrame(rows), emb
