"""Model registry: names -> Embedder classes, one loaded instance per process (reset with `clear_cache`)."""
from __future__ import annotations

import threading

from .base import Embedder, ModelUnavailable, l2_normalize

MODEL_NAMES = ("panns-cnn14", "aisfx", "mfcc")
_cache: dict[tuple, Embedder] = {}
_lock = threading.Lock()


def _class_for(name: str):
    if name == "panns-cnn14":
        from .panns import PannsCnn14

        return PannsCnn14
    if name == "aisfx":
        from .aisfx import AisfxEmbedder

        return AisfxEmbedder
    if name == "mfcc":
        from .mfcc import MfccBaseline

        return MfccBaseline
    raise ValueError(f"unknown model {name!r}; choose one of: auto, {', '.join(MODEL_NAMES)}")


def _cache_key(name: str, settings) -> tuple:
    key = (name, settings.torch_threads, settings.inference)
    if name == "panns-cnn14":
        return key + (str(settings.panns_checkpoint_path),)
    return key


def _load(name: str, settings) -> Embedder:
    key = _cache_key(name, settings)
    if key not in _cache:
        cls = _class_for(name)
        _cache[key] = cls(settings)
    return _cache[key]


def get_embedder(settings, name: str | None = None) -> Embedder:
    """The embedder for `name` (default settings.model); `auto` = PANNs when its weights are
    present or downloadable, else aisfx. The returned embedder's `note` says why."""
    name = name or settings.model
    with _lock:
        if name != "auto":
            return _load(name, settings)
        from .panns import checkpoint_complete

        have = settings.panns_checkpoint is not None or checkpoint_complete(settings.panns_checkpoint_path)
        if have or settings.allow_download:
            try:
                emb = _load("panns-cnn14", settings)
                emb.note = "auto: PANNs Cnn14 checkpoint available"
                return emb
            except ModelUnavailable as exc:
                reason = str(exc)
        else:
            reason = "PANNs checkpoint not present and downloads are off"
        try:
            emb = _load("aisfx", settings)
        except ModelUnavailable as exc:  # e.g. a Space that installed only requirements.txt, offline
            raise ModelUnavailable(f"No model could be loaded. PANNs Cnn14: {reason} The offline aisfx model: {exc}") from None
        emb.note = f"auto: fell back to aisfx because {reason}"
        return emb


def clear_cache() -> None:
    with _lock:
        _cache.clear()


__all__ = ["Embedder", "ModelUnavailable", "MODEL_NAMES", "get_embedder", "clear_cache", "l2_normalize"]
