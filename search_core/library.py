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

from .calibration import SAMPLE_ROWS, ScoreScale, score_scale
from .embedders import get_embedder
from .indexer import Indexer, IndexReport, Progress
from .labels import NEIGHBOURS, Suggestion, is_labelled, suggest_label
from .search import Query, SearchResult, hits_frame, load_query, search_vector
from .settings import Settings
from .store import Store, StoreError, collection_name


SUGGEST_MAX = 500  # unlabelled files of one indexing run that get a suggestion in its report


class Library:
    def __init__(self, settings: Settings | None = None, *, model: str | None = None, collection: str | None = None):
        self.settings = settings or Settings.from_env()
        self.embedder = get_embedder(self.settings, model)
        self.collection = collection or collection_name(self.settings.library, self.embedder.name)
        self.store = Store(self.settings.uri, self.collection, self.embedder.name, self.embedder.dim, self.settings.milvus_token)
        self._index_lock = threading.Lock()
        self._scale: tuple[tuple, ScoreScale | None] | None = None

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
        shard=None,
    ) -> IndexReport:
        """Index files/folders; one indexing job at a time per library (searches keep running);
        `shard` (indexer.Shard): only this indexer's part of them."""
        if not self._index_lock.acquire(blocking=False):
            raise StoreError("Another indexing job is running on this library; try again when it finishes.")
        try:
            report = Indexer(self.store, self.embedder, self.settings).index(paths, default_label=default_label, progress=progress, names=names, shard=shard)
            self._suggest_for_unlabelled(report)
            return report
        finally:
            Store.save_mirrors()  # the next start reads the library's vectors back in a second
            self._index_lock.release()

    def _suggest_for_unlabelled(self, report: IndexReport) -> None:
        """Files stored without a label get the category their labelled neighbours suggest."""
        ids = [fid for fid, label in report.stored if not is_labelled(label)][:SUGGEST_MAX]
        for row in self.store.get(ids, with_vectors=True):
            s = self.suggest(row["embedding"], exclude_ids=[row["id"]])
            report.suggestions.append({"id": row["id"], "name": row["name"], "suggested_label": s.as_dict() if s else None})

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
        return search_vector(self.store, self.embed_query(query), top_k, label=label, max_duration=max_duration, scale=self.score_scale())

    def score_scale(self) -> ScoreScale | None:
        """The library's own distribution of similarities (for `percentile`), once per library state."""
        state = (self.count(), self.store.count_segments())
        cached = self._scale
        if cached is None or cached[0] != state:
            cached = self._scale = (state, score_scale(*self.store.sample_rows(SAMPLE_ROWS)))
        return cached[1]

    def embed_query_tagged(self, query: Query) -> tuple[np.ndarray, list[dict] | None]:
        """The query's vector and, when the model names classes, its top tags (one forward pass)."""
        clip = load_query(query, self.embedder, self.settings)
        vectors, probs = self.embedder.embed_tagged([clip.samples])
        return vectors[0], None if probs is None else self.embedder.top_tags(probs[0])

    def similar(self, query: Query, top_k: int = 5, *, label: str | None = None, max_duration: float | None = None) -> SearchResult:
        """Results with the suggested category (which ignores the filters: it is about the sound)."""
        vector, tags = self.embed_query_tagged(query)
        result = self.similar_by_vector(vector, top_k, label=label, max_duration=max_duration)
        result.query_tags = tags
        return result

    def similar_by_vector(self, vector: np.ndarray, top_k: int = 5, *, label: str | None = None,
                          max_duration: float | None = None, exclude_ids: Sequence[str] = ()) -> SearchResult:
        vector = np.asarray(vector, dtype=np.float32)
        if label is None and max_duration is None:  # one search serves the results and the vote
            hits = self.store.search(vector, max(top_k, 3 * NEIGHBOURS), exclude_ids=exclude_ids)
            suggestion = suggest_label([h.label for h in hits], [h.score for h in hits])
            return SearchResult(hits_frame(hits[:top_k], self.score_scale()), suggestion, vector)
        frame = search_vector(self.store, vector, top_k, label=label, max_duration=max_duration, exclude_ids=exclude_ids,
                              scale=self.score_scale())
        return SearchResult(frame, self.suggest(vector, exclude_ids=exclude_ids), vector)

    def similar_by_id(self, item_id: str, top_k: int = 5) -> SearchResult:
        """"More like this": the item's stored vector (the mean of its segments) searches; the
        model is not run. The item itself is left out. KeyError for an unknown id."""
        rows = self.store.get([item_id], with_vectors=True)
        if not rows:
            raise KeyError(f"no item with id {item_id!r} in this library")
        return self.similar_by_vector(np.asarray(rows[0]["embedding"], dtype=np.float32), top_k, exclude_ids=[item_id])

    def suggest(self, vector: np.ndarray, *, exclude_ids: Sequence[str] = ()) -> Suggestion | None:
        """The category the nearest labelled sounds vote for (None: no labels, or too split)."""
        hits = self.store.search(vector, 3 * NEIGHBOURS, exclude_ids=exclude_ids)
        return suggest_label([h.label for h in hits], [h.score for h in hits])

    def get(self, item_id: str) -> dict | None:
        rows = self.store.get([item_id])
        return rows[0] if rows else None

    def count(self) -> int:
        return self.store.count()

    def stats(self) -> dict:
        return {
            "model": self.model,
            "model_note": self.embedder.note,
            "inference": self.embedder.inference,
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
        files, segs = self.store.segment_vectors()
        for fid, vec in zip(files, segs):
            i = pos.get(fid)
            if i is not None:  # a long file's vector is the mean of its segments'
                emb[i] += vec
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return pd.DataFrame(rows), emb
