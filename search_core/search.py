"""Query in -> embedding -> nearest neighbours -> a pandas DataFrame of results."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd

from .audio import Clip, load_audio, prepare, require_sound
from .calibration import ScoreScale
from .embedders.base import Embedder
from .labels import Suggestion
from .store import Hit, Store

# A file path, or (sample_rate, samples) as microphones and Gradio's numpy audio give it.
Query = Union[str, Path, tuple]
RESULT_COLUMNS = ["rank", "name", "label", "score", "percentile", "duration", "start", "end", "path", "id", "tags"]


@dataclass
class SearchResult:
    """Ranked results, the category the query's neighbours suggest, and the query's vector (the
    map draws it; "more like this" reuses a stored one)."""

    frame: pd.DataFrame  # RESULT_COLUMNS
    suggestion: Suggestion | None
    vector: np.ndarray
    query_tags: list[dict] | None = None  # what a tagging model hears in the query (None: no tags)

    def results(self) -> list[dict]:
        """The JSON contract's `results` (the CLI's and the REST API's); `tags` only where known."""
        out = []
        for r in self.frame.itertuples():
            hit = {"rank": int(r.rank), "id": r.id, "name": r.name, "label": r.label, "score": float(r.score),
                   "percentile": None if pd.isna(r.percentile) else float(r.percentile), "duration": float(r.duration),
                   "start": float(r.start), "end": float(r.end), "path": r.path}
            if r.tags:
                hit["tags"] = r.tags
            out.append(hit)
        return out


def tags_text(tags: list[dict] | None, top: int = 5) -> str:
    """Tags as people read them: "Explosion 0.81, Boom 0.42"."""
    return ", ".join(f"{t['label']} {t['p']:.2f}" for t in (tags or [])[:top])


def load_query(query: Query, embedder: Embedder, settings) -> Clip:
    """The query decoded for the model; AudioError for anything unusable, silence included."""
    if isinstance(query, tuple):
        rate, samples = query
        return require_sound(prepare(samples, rate, embedder.sample_rate, name="recording", max_seconds=settings.max_query_seconds))
    return require_sound(load_audio(
        query,
        embedder.sample_rate,
        max_seconds=settings.max_query_seconds,
        max_bytes=settings.max_upload_bytes,
    ))


def hits_frame(hits: Sequence[Hit], scale: ScoreScale | None = None) -> pd.DataFrame:
    """Ranked hits; `percentile` places each score among the library's own pairs (NaN without a scale)."""
    rows = [
        {"rank": i + 1, "name": h.name, "label": h.label, "score": round(h.score, 4),
         "percentile": scale.percentile(h.score) if scale else float("nan"),
         "duration": round(h.duration, 2), "start": round(h.start, 3), "end": round(h.end, 3), "path": h.path, "id": h.id, "tags": h.tags}
        for i, h in enumerate(hits)
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def search_vector(
    store: Store,
    vector: np.ndarray,
    top_k: int = 5,
    *,
    label: str | None = None,
    max_duration: float | None = None,
    exclude_ids: Sequence[str] = (),
    scale: ScoreScale | None = None,
) -> pd.DataFrame:
    return hits_frame(store.search(vector, top_k, label=label, max_duration=max_duration, exclude_ids=exclude_ids), scale)
