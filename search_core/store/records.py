"""What goes into the store (a Record: one file, one or more segment vectors) and what comes out
of a search (a Hit: one file, its best segment)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


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
