"""A score a person can read beside the raw cosine: its percentile among the library's own pairs.

Embedding cosines are compressed (aisfx puts most pairs of unrelated game sounds between 0.7 and
0.86), so 0.89 and 0.92 look alike. `percentile` says how this similarity ranks against pairs of
sounds of the library itself: 99 means only 1% of pairs of library sounds are as alike. The
distribution is measured once per library state from a sample of segments (pairs of different
files), so it costs one matrix product, not a pass over the library.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_ROWS = 2000  # up to ~2M pairs: percentiles to a tenth of a percent
GRID = np.linspace(0.0, 100.0, 1001)


@dataclass(frozen=True)
class ScoreScale:
    quantiles: np.ndarray  # the pairs' cosine at each GRID percentile (non-decreasing)
    pairs: int

    def percentile(self, score: float) -> float:
        """The share of library pairs (in %) less alike than `score`, to one decimal."""
        q = self.quantiles
        if score < q[0]:
            return 0.0
        if score >= q[-1]:
            return 100.0
        # the upper end of a run of equal quantiles: a score equal to many pairs ranks above them
        lo, hi = np.searchsorted(q, score, side="left"), np.searchsorted(q, score, side="right")
        if hi > lo:
            return round(float(GRID[hi - 1]), 1)
        return round(float(np.interp(score, q, GRID)), 1)

    def as_dict(self) -> dict:
        return {"pairs": self.pairs, "median": round(float(self.quantiles[500]), 4), "p99": round(float(self.quantiles[990]), 4)}


def score_scale(files: list[str], vectors: np.ndarray) -> ScoreScale | None:
    """The distribution of cosines between segments of different files (None: fewer than 2 files)."""
    vectors = np.asarray(vectors, np.float32)
    if len(set(files)) < 2:
        return None
    sims = vectors @ vectors.T
    owner = np.asarray(files)
    i, j = np.triu_indices(len(files), 1)
    keep = owner[i] != owner[j]
    pairs = np.clip(sims[i[keep], j[keep]], 0.0, 1.0)  # scores are clipped to [0, 1] the same way
    return ScoreScale(np.percentile(pairs, GRID), int(keep.sum()))
