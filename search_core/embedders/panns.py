"""PANNs Cnn14 (Kong et al. 2020): the reference model, 2048-d embeddings at 32 kHz plus 527 AudioSet tags.

Traps in panns_inference 0.1.1 handled here: importing it shells out to wget for the labels CSV
(offline: a 0-byte file and 0 classes), so the 527 labels ship with us and are put in its cache
first; it re-downloads (truncating) any checkpoint under 3e8 bytes, so we download and load the
checkpoint ourselves, atomically; torch >= 2.6 refuses the released checkpoint without an
allow-list; Cnn14 fails on clips <= 0.3 s, so clips are padded to 1 s.
"""
from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio import pad_to_seconds
from .base import Embedder, ModelUnavailable, l2_normalize
from .onnx_forward import check_signal, forward_or_torch, onnx_forward
from .torch_util import numpy_safe_globals, set_threads

LABELS_CSV = Path(__file__).resolve().parent.parent / "data" / "audioset_labels.csv"
MIN_CHECKPOINT_BYTES = 300_000_000  # the real file is ~327 MB; anything smaller is partial
WINDOW_SECONDS = 20.0  # long clips are embedded in windows and averaged: bounded memory


def audioset_labels() -> list[str]:
    with LABELS_CSV.open(newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def checkpoint_complete(path: Path) -> bool:
    return path.is_file() and path.stat().st_size >= MIN_CHECKPOINT_BYTES


def _offline_hint(settings, dest: Path) -> str:
    return (
        f"Download it by hand from {settings.panns_url} and put it at {dest} "
        f"(or set PANNS_CHECKPOINT=/path/to/{dest.name}), "
        "or run offline with the bundled model: SOUNDALIKE_MODEL=aisfx."
    )


def download_checkpoint(settings, dest: Path | None = None, *, progress: bool = True) -> Path:
    """Fetch the checkpoint to a temp file beside `dest` and rename it when complete.

    A failed or interrupted download never leaves a 0-byte or partial file at `dest`.
    """
    dest = Path(dest or settings.panns_checkpoint_path)
    url = settings.panns_url
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailable(f"Cannot create {dest.parent} for the PANNs checkpoint ({exc}). " + _offline_hint(settings, dest)) from None
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=settings.download_timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=f"Downloading {dest.name}", file=sys.stderr)
            got = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                got += len(chunk)
                if bar:
                    bar.update(len(chunk))
            if bar:
                bar.close()
        if total and got != total:
            raise OSError(f"download ended after {got} of {total} bytes")
        if got < MIN_CHECKPOINT_BYTES:
            raise OSError(f"got only {got} bytes, expected about 327 MB")
        os.replace(tmp, dest)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ModelUnavailable(
            f"Could not download the PANNs Cnn14 checkpoint from {url} ({reason}). " + _offline_hint(settings, dest)
        ) from None
    return dest


def resolve_checkpoint(settings, *, download: bool = True, progress: bool = True) -> Path:
    """Configured path, else the usual cache, else download (when allowed)."""
    if settings.panns_checkpoint is not None:
        path = Path(settings.panns_checkpoint)
        if not path.is_file():
            raise ModelUnavailable(f"PANNS_CHECKPOINT points to {path}, which does not exist. " + _offline_hint(settings, path))
        return path
    path = settings.panns_checkpoint_path
    if checkpoint_complete(path):
        return path
    if not download:
        raise ModelUnavailable(f"The PANNs checkpoint is not at {path}. " + _offline_hint(settings, path))
    return download_checkpoint(settings, path, progress=progress)


def _prime_panns_labels() -> None:
    """Put our labels where panns_inference looks, so importing it never runs wget."""
    target = Path.home() / "panns_data" / "class_labels_indices.csv"
    try:
        if not target.is_file() or target.stat().st_size == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(LABELS_CSV, target)
    except OSError as exc:
        raise ModelUnavailable(f"Cannot write the AudioSet labels to {target} ({exc})") from None


def build_cnn14():
    """The released Cnn14 architecture (527 AudioSet classes), random weights."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    _prime_panns_labels()
    from panns_inference.models import Cnn14

    return Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527)


def load_cnn14(checkpoint: Path):
    """Cnn14 with the checkpoint's weights, memory-mapped from the file where its format allows
    (torch's zip format): the module takes the file's tensors in place of its random ones, which
    are freed, so loading does not hold the file's 327 MB and a copy of them in the module at once."""
    import torch

    model = build_cnn14()  # not on torch's meta device: torchlibrosa sets weights from numpy as it is built
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            try:
                ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # an old (pre-zip) checkpoint cannot be mapped: read it whole
                ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        model.load_state_dict(state, assign=True)
    except Exception as exc:
        raise ModelUnavailable(
            f"The PANNs checkpoint at {checkpoint} could not be loaded ({str(exc).splitlines()[0][:200]}). "
            "Delete it to download it again, or use SOUNDALIKE_MODEL=aisfx."
        ) from None
    model.eval()
    return model


def two_outputs(model):
    """Cnn14 as a module of one input and two outputs (embedding, clipwise), as ONNX exports it
    (torch is imported lazily in this module, hence the class inside)."""
    import torch

    class TwoOutputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x, None)
            return out["embedding"], out["clipwise_output"]

    return TwoOutputs(model).eval()


class PannsCnn14(Embedder):
    name = "panns-cnn14"
    dim = 2048
    sample_rate = 32000
    min_seconds = 1.0
    window_seconds = 4.0  # segments and scan windows (AudioSet clips are 10 s; 4 s keeps moments apart)
    hop_seconds = 2.0
    description = "PANNs Cnn14 (AudioSet, 2048-d, 32 kHz)"

    def __init__(self, settings, *, download: bool = True, progress: bool = True):
        import torch

        set_threads(settings)
        self._torch = torch
        self.checkpoint = resolve_checkpoint(settings, download=download, progress=progress)
        self.model = load_cnn14(self.checkpoint)
        self.labels = audioset_labels()
        mode = settings.inference
        # int8: its quality cannot be measured without the real weights (none offline here). bf16
        # runs a repeated input length 3-4x faster, but OpenVINO compiles each new length once
        # (0.05-0.2 s) and files' lengths rarely repeat: over 15 lengths of 1.5-8 s it took as long
        # as ONNX Runtime in float32, and on random weights it missed the 0.999 check (0.9984)
        if mode in ("int8", "bf16"):
            print(f"warning: panns-cnn14: {mode} is offered for aisfx only; using onnx", file=sys.stderr, flush=True)
            mode = "onnx"
        rate = self.sample_rate
        self.fast = forward_or_torch(lambda path: onnx_forward(
            two_outputs(self.model), name=self.name, weights=self.checkpoint, mode=path, check=check_signal(rate, 3.0)[None, :],
            reference=lambda x: self._torch_forward(x)[0], cache_dir=settings.model_cache_dir, threads=settings.torch_threads,
            dynamic={1: ("samples", int(self.min_seconds * rate), int((WINDOW_SECONDS + 2) * rate))}, outputs=("embedding", "clipwise")),
            mode, self.name)
        self.inference = self.fast.mode if self.fast is not None else "torch"
        if self.fast is not None:  # checked against torch: the module's 327 MB are not needed again
            self.model = None

    def _torch_forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._torch.inference_mode():
            out = self.model(self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), None)
        return out["embedding"].numpy(), out["clipwise_output"].numpy()

    def _forward(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding, clipwise) for one clip, windowed so memory stays bounded on long input."""
        samples = pad_to_seconds(samples, self.sample_rate, self.min_seconds)
        win = int(WINDOW_SECONDS * self.sample_rate)
        pieces = [samples[i : i + win] for i in range(0, len(samples), win)]
        if len(pieces) > 1 and len(pieces[-1]) < self.min_seconds * self.sample_rate:
            pieces[-2] = np.concatenate([pieces[-2], pieces.pop()])
        forward = self._torch_forward if self.fast is None else self.fast
        embs, tags, weights = [], [], []
        for piece in pieces:
            emb, tag = forward(piece[None, :])
            embs.append(emb[0])
            tags.append(tag[0])
            weights.append(len(piece))
        w = np.asarray(weights, dtype=np.float32)
        return np.average(embs, axis=0, weights=w), np.average(tags, axis=0, weights=w)

    def _embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self._forward(c)[0] for c in clips])

    def embed_tagged(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings and AudioSet probabilities from the same forward passes (tags cost nothing)."""
        if len(clips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros((0, len(self.labels)), dtype=np.float32)
        out = [self._forward(c) for c in clips]
        return l2_normalize(np.stack([e for e, _ in out])), np.stack([t for _, t in out]).astype(np.float32)

    @property
    def tag_labels(self) -> list[str]:
        return self.labels

    def tags(self, samples: np.ndarray, top: int = 5) -> list[tuple[str, float]]:
        """The clip's top AudioSet classes with probabilities."""
        return [(t["label"], t["p"]) for t in self.top_tags(self._forward(samples)[1], top)]
