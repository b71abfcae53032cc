"""The one interface every audio model sits behind."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here (missing weights, no network, bad checkpoint); message is for people."""


class FastPathUnavailable(RuntimeError):
    """A faster inference path cannot serve this model here; the message says why (the next path
    runs: onnx_forward.forward_or_torch)."""


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise unit length; an all-zero (or non-finite) row becomes a fixed unit vector, never NaN."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = np.atleast_2d(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    dead = norms[:, 0] < 1e-12
    if dead.any():
        x[dead] = 1.0
        norms[dead] = np.sqrt(x.shape[1])
    return (x / norms).astype(np.float32)


def segment_spans(duration: float, window: float, hop: float) -> list[tuple[float, float]]:
    if duration <= window:
        return [(0.0, float(duration))]
    starts = list(np.arange(0.0, duration - window, hop))
    if duration - window - starts[-1] > 1e-3:
        starts.append(duration - window)
    return [(round(float(s), 4), round(float(s) + window, 4)) for s in starts]


class Embedder(ABC):
    """Turns mono float32 clips at `sample_rate` into L2-normalised `dim`-d rows.

    Subclasses load their weights once in __init__; the registry keeps one instance per process.
    """

    name: str
    dim: int
    sample_rate: int
    min_seconds: float = 0.0
    description: str = ""
    note: str = ""  # why this model was chosen, e.g. by `auto`
    inference: str = "numpy"  # the forward pass that runs: torch, onnx, bf16 or int8 for the torch models (onnx_forward.py)
    # Library files longer than the window are stored as overlapping segments of this length, and
    # scans embed recordings in the same windows, so a moment is compared with a moment.
    window_seconds: float = 2.0
    hop_seconds: float = 1.0

    @abstractmethod
    def _embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (n, dim) features for clips already at `sample_rate`."""

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if len(clips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = l2_normalize(self._embed(clips))
        assert out.shape == (len(clips), self.dim), out.shape
        return out

    def embed_one(self, samples: np.ndarray) -> np.ndarray:
        return self.embed([samples])[0]

    # Models that also name what they hear (PANNs: 527 AudioSet classes) override these.
    tag_labels: Sequence[str] = ()

    def embed_tagged(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings, per-clip class probabilities (n, len(tag_labels)) or None), from one pass."""
        return self.embed(clips), None

    def prepare(self, clips: Sequence[np.ndarray]) -> list:
        """The front end's work on clips, done ahead of the forward pass: the indexer's decode
        workers call it, so it overlaps the model's work on the batch before. One entry per clip;
        lists of entries concatenate. Default: the clips themselves (the model does it all)."""
        return list(clips)

    def embed_prepared(self, prepared: list) -> tuple[np.ndarray, np.ndarray | None]:
        """embed_tagged of the clips that prepare() was given."""
        return self.embed_tagged(prepared)

    def top_tags(self, probs: np.ndarray | None, top: int = 5) -> list[dict] | None:
        """The `top` classes of one probability row, as the JSON contract's [{"label", "p"}]."""
        if probs is None or not len(self.tag_labels):
            return None
        order = np.argsort(probs)[::-1][:top]
        return [{"label": self.tag_labels[i], "p": round(float(probs[i]), 4)} for i in order]

    def spans(self, duration: float) -> list[tuple[float, float]]:
        """Segments of a file: the whole file when it fits one window, else overlapping windows
        (the last one aligned to the end, so every moment is covered)."""
        return segment_spans(duration, self.window_seconds, self.hop_seconds)

    def pieces(self, samples: np.ndarray, duration: float) -> tuple[list[tuple[float, float]], list[np.ndarray]]:
        """(spans, the samples of each span) of one decoded clip."""
        spans = self.spans(duration)
        if len(spans) == 1:
            return spans, [samples]
        sr = self.sample_rate
        return spans, [samples[int(round(s * sr)) : int(round(e * sr))] for s, e in spans]

    def info(self) -> dict:
        return {"model": self.name, "dim": self.dim, "sample_rate": self.sample_rate, "note": self.note, "inference": self.inference}
