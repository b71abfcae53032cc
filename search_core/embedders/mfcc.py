"""A classic, no-learning baseline: MFCC statistics. Used to show what the learned models add."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..audio import pad_to_seconds
from .base import Embedder


class MfccBaseline(Embedder):
    name = "mfcc"
    dim = 38
    sample_rate = 22050
    min_seconds = 0.1  # >= one 2048-sample STFT frame at 22.05 kHz
    description = "MFCC 1-19 mean+std (no learning; baseline)"

    def __init__(self, settings=None):
        pass

    def _embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        import librosa

        rows = []
        for samples in clips:
            # c0 is loudness: dropped so the baseline compares timbre, not volume.
            samples = pad_to_seconds(samples, self.sample_rate, self.min_seconds)
            m = librosa.feature.mfcc(y=samples, sr=self.sample_rate, n_mfcc=20)[1:]
            rows.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
        return np.stack(rows).astype(np.float32)
