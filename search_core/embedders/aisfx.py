"""aisfx: a pretrained sound-effects model (Ma & Lerch, ISMIR 2022, CC BY 4.0) whose weights ship
inside the PyPI wheel, so it runs offline. 512-d per ~2.3 s block at 44.1 kHz, pooled over blocks.

Three fixes around the package: an allow-list for torch.load (torch >= 2.6 defaults to
weights_only), the librosa front end returns (mels, frames) where its blocking wants
(frames, mels), and its blocking asserts on clips under ~1.2 s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio import pad_to_seconds
from .base import Embedder, ModelUnavailable, l2_normalize
from .onnx_forward import check_signal, forward_or_torch, onnx_forward
from .torch_util import numpy_safe_globals, set_threads

CHUNK_BLOCKS = 32  # blocks per forward pass: bounds memory on long files
CALIBRATION_FILES = 64  # bundled sounds whose blocks calibrate the int8 graph (sorted: the same set each time)


STFT_FRAMES = 1024  # frames per FFT call: 8 MB of windowed frames, so a long file's peak memory stays low


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|librosa.stft(y, n_fft, hop)|**2 (centred, zero-padded, periodic Hann window of n_fft), as
    (bins, frames): the same values within float32 rounding (1e-6), in half the time, because the
    frames go through one FFT call per STFT_FRAMES where librosa makes several, with copies
    between them."""
    import scipy.fft
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.signal import get_window

    padded = np.pad(np.asarray(y, dtype=np.float32), (n_fft // 2, n_fft // 2))  # never shorter than n_fft
    frames = sliding_window_view(padded, n_fft)[::hop]  # a view: nothing is copied yet
    window = get_window("hann", n_fft).astype(np.float32)  # periodic, as librosa's
    out = np.empty((n_fft // 2 + 1, len(frames)), dtype=np.float32)
    for start in range(0, len(frames), STFT_FRAMES):
        spec = scipy.fft.rfft(frames[start : start + STFT_FRAMES] * window, axis=1)
        out[:, start : start + STFT_FRAMES] = (spec.real**2 + spec.imag**2).T
    return out


class AisfxEmbedder(Embedder):
    name = "aisfx"
    dim = 512
    sample_rate = 44100
    min_seconds = 2.4  # one full block of 100 frames (hop 1024)
    window_seconds = 2.4  # segments and scan windows: one block each
    hop_seconds = 1.2
    description = "aisfx X-Sequential-CE (sound-effects libraries, 512-d, 44.1 kHz)"

    def __init__(self, settings=None):
        try:
            import torch
            from aisfx import inference as ai
            from aisfx import preprocessing as pre
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailable(f"aisfx is not installed ({exc}). scripts/install.sh installs it (with --no-deps: its own pins "
                                   "are stale); an install of requirements.txt alone, as on a Hugging Face Space, has no aisfx.") from exc
        set_threads(settings)
        self._torch = torch
        self._ai = ai
        self._pre = pre
        self._mel = None  # the mel filter bank, built on first use
        with torch.serialization.safe_globals(numpy_safe_globals()):
            weights, ds_dict = torch.load(ai.get_path_modelWeights(), map_location="cpu", weights_only=True)
        self.model = ai.load_bestModel(weights, ds_dict, "cpu")
        self.model.eval()
        self.sample_dir = getattr(settings, "sample_dir", None)
        mode = getattr(settings, "inference", "torch")
        # auto: bf16 where the CPU computes it natively (6x ONNX Runtime's float32 here), else onnx
        self.fast = forward_or_torch(lambda path: onnx_forward(
            self.model.embedding_net, name=self.name, weights=Path(ai.get_path_modelWeights()), mode=path,
            check=self.blocks(check_signal(self.sample_rate)), reference=self._torch_forward,
            cache_dir=settings.model_cache_dir, threads=settings.torch_threads, calibration=self._calibration),
            mode, self.name, prefer=("bf16", "onnx"))
        self.inference = self.fast.mode if self.fast is not None else "torch"

    def spectrogram(self, samples: np.ndarray) -> np.ndarray:
        """aisfx's librosa front end on an array, returned as (frames, mels). It is librosa's
        melspectrogram with the mel filter bank built once, not on every call (that was a third of
        the front end's time: benchmarks, profile), and the STFT taken in one call over all frames
        (power_spectrogram)."""
        ai = self._ai
        peak = float(np.max(np.abs(samples))) or 1.0
        y = np.asarray(samples, dtype=np.float32) / np.float32(peak)
        spec = self._mel_basis() @ power_spectrogram(y, ai.SPEC_BLOCK_LENGTH, ai.SPEC_HOP_LENGTH)
        spec = np.log10(spec * 10000.0 + 1)
        spec = self._pre.spectrogram_normalize(spec, spec_norm="original")
        return spec.T  # (frames, mels): the orientation `blocking` expects

    def _mel_basis(self) -> np.ndarray:
        if self._mel is None:
            import librosa

            ai = self._ai
            self._mel = librosa.filters.mel(sr=self.sample_rate, n_fft=2048, n_mels=ai.MEL_BINS, norm=1.0, fmin=ai.F_MIN,
                                            fmax=ai.F_MAX, htk=True)
        return self._mel

    def blocks(self, samples: np.ndarray) -> np.ndarray:
        samples = pad_to_seconds(samples, self.sample_rate, self.min_seconds)
        spec = self.spectrogram(samples)
        ai = self._ai
        hop = self._pre.compute_hopSize(ai.EMB_BLOCK_LENGTH, 0.5, spec)
        return self._pre.blocking(spec, block_size=ai.EMB_BLOCK_LENGTH, hop_size=hop, drop_partial_block=True)

    def _torch_forward(self, blocks: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model.get_embedding(self._torch.from_numpy(np.ascontiguousarray(blocks, dtype=np.float32))).numpy()

    def _calibration(self) -> np.ndarray:
        """Blocks of the first bundled sounds (int8's activation ranges come from real audio)."""
        from ..audio import load_audio

        files = sorted(Path(self.sample_dir).rglob("*.ogg"))[:CALIBRATION_FILES] if self.sample_dir else []
        if not files:
            raise ValueError("no bundled sounds to calibrate int8 with")
        return np.concatenate([self.blocks(load_audio(f, self.sample_rate).samples) for f in files]).astype(np.float32)

    def block_embeddings(self, blocks: np.ndarray) -> np.ndarray:
        forward = self._torch_forward if self.fast is None else (lambda b: self.fast(b)[0])
        return np.concatenate([forward(blocks[start : start + CHUNK_BLOCKS]) for start in range(0, len(blocks), CHUNK_BLOCKS)])

    def prepare(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each clip's blocks (the mel front end: after bf16, the largest stage of indexing)."""
        return [self.blocks(c) for c in clips]

    def embed_prepared(self, prepared: list[np.ndarray]) -> tuple[np.ndarray, None]:
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32), None
        return l2_normalize(self._pooled(prepared)), None

    def _embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self._pooled(self.prepare(clips))

    def _pooled(self, per_clip: list[np.ndarray]) -> np.ndarray:
        """One row per clip: the mean of its blocks' unit embeddings."""
        counts = [len(b) for b in per_clip]
        emb = l2_normalize(self.block_embeddings(np.concatenate(per_clip)))
        rows, start = [], 0
        for n in counts:
            rows.append(emb[start : start + n].mean(axis=0))
            start += n
        return np.stack(rows)
