"""Soundalike's engine: audio -> embedding -> Milvus -> ranked results. Front ends only call this."""
from .audio import AudioError, Clip, load_audio
from .embedders import ModelUnavailable, get_embedder
from .indexer import IndexReport
from .settings import Settings
from .store import Hit, Record, Store, StoreError

__all__ = [
    "AudioError", "Clip", "load_audio", "ModelUnavailable", "get_embedder", "IndexReport",
    "Settings", "Hit", "Record", "Store", "StoreError", "Library",
]


def __getattr__(name):  # Library pulls in pandas and the models: load it on first use
    if name == "Library":
        from .library import Library

        return Library
    raise AttributeError(name)
