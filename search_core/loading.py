"""The library, opened once and lazily (loading a model takes seconds; PANNs may download first).

With a background load (the app's) callers meet ModelLoading until it ends, so the app serves and
says "loading" meanwhile. A failure is remembered for `load_retry` seconds (a Space's visitors do
not each wait for a download that just failed), then the next call tries again.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from .embedders import ModelUnavailable
from .settings import Settings
from .status import AppStatus
from .store import StoreError


class ModelLoading(ModelUnavailable):
    """The model is still loading in the background (503 in the REST API; the UI says so)."""

    def __init__(self):
        super().__init__("The model is still loading (a first start may be downloading it); try again in a minute.")


class LibraryLoader:
    def __init__(self, settings: Settings, on_ready: Callable[[], None] = lambda: None):
        self.settings = settings
        self.on_ready = on_ready  # called in the loader thread once the library is open
        self._library = None
        self.lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._load_error: tuple[float, Exception] | None = None  # when and why the last load failed

    @property
    def library(self):
        """The open Library (see the module's docstring for loading and failures)."""
        loader = self._loader
        if loader is not None and loader.is_alive() and threading.current_thread() is not loader:
            raise ModelLoading()
        with self.lock:
            if self._library is None:
                failed = self._load_error
                if failed and time.monotonic() - failed[0] < self._retry_after(failed[1]):
                    raise failed[1]
                if loader is not None and threading.current_thread() is not loader:
                    self._start_loader()  # the retry happens in the background too
                    raise ModelLoading()
                from .library import Library

                try:
                    self._library = Library(self.settings)
                except (ModelUnavailable, StoreError) as exc:
                    self._load_error = (time.monotonic(), exc)
                    raise
                self._load_error = None
            return self._library

    def _retry_after(self, exc: Exception) -> float:
        # a missing model stays missing for a while; a store that is down may be back in seconds
        return self.settings.load_retry if isinstance(exc, ModelUnavailable) else 2.0

    def load_in_background(self) -> threading.Thread:
        """Load the model and open the library in a thread, so the app serves (and says
        "loading") meanwhile: on a Space the PANNs download happens at start-up, in the log."""
        with self.lock:
            return self._start_loader()

    def _start_loader(self) -> threading.Thread:
        def load() -> None:
            try:
                lib = self.library
                print(f"Soundalike: model {lib.model} ready, {lib.count()} sounds in the library.", flush=True)
                self.on_ready()
            except (ModelUnavailable, StoreError) as exc:
                print(f"warning: {exc}", flush=True)

        if self._loader is None or not self._loader.is_alive():
            self._loader = threading.Thread(target=load, name="model-loader", daemon=True)
            self._loader.start()
        return self._loader

    def status(self, public: bool, known: tuple[str, ...]) -> AppStatus:
        """The header's one line and its details (`known` paths redacted when `public`)."""
        from .status import failed_status, loading_status, ready_status

        try:
            lib = self.library
            counts = lib.store.label_counts()
        except ModelLoading:
            return loading_status()
        except ModelUnavailable as exc:
            return failed_status("no_model", str(exc), public=public, known=known)
        except StoreError as exc:
            return failed_status("no_library", str(exc), public=public, known=known)
        emb = lib.embedder
        return ready_status(lib.model, emb.dim, emb.description, emb.note, counts, public=public, known=known)
