"""Views of the whole library that cost seconds to compute (the 2-D map, the duplicate groups),
computed once per library state and shared by every visitor and front end until it changes."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from .dupes import DupesResult
from .embedders import ModelUnavailable
from .libmap import MapLayout, compute_layout
from .settings import Settings
from .store import StoreError


class LibraryViews:
    def __init__(self, settings: Settings, library: Callable[[], object]):
        self.settings = settings
        self.library = library  # the open Library (raises while it loads)
        self._map_cache: tuple | None = None
        self._map_lock = threading.Lock()
        self._dupes_cache: tuple | None = None
        self._dupes_lock = threading.Lock()

    @contextmanager
    def paused(self):
        """No view is computed meanwhile: for dropping the collection, which a computation that
        reads every row must not meet half-way (it once took the app down with it)."""
        with self._map_lock, self._dupes_lock:
            yield

    def changed(self) -> None:
        """The library changed: both views are stale."""
        self._map_cache = None
        self._dupes_cache = None

    def dupes(self, threshold: float | None = None, progress: Callable | None = None) -> DupesResult:
        """Near-duplicate groups; cached per library state and threshold (the library tab and the
        REST API ask again without paying again)."""
        from .dupes import DEFAULT_THRESHOLD, check_threshold, find_dupes

        threshold = check_threshold(DEFAULT_THRESHOLD if threshold is None else threshold)
        lib = self.library()
        key = (lib.count(), lib.store.count_segments(), threshold)
        with self._dupes_lock:  # one comparison at a time; a caller that waited gets its result
            cached = self._dupes_cache
            if cached and cached[0] == key:
                return cached[1]
            result = find_dupes(lib, threshold, progress=progress)
            self._dupes_cache = (key, result)
            return result

    def library_map(self) -> MapLayout | None:
        """The library's 2-D layout (None while it is empty): computed once per library state,
        kept in memory and beside the library, so opening the map tab costs no computation."""
        lib = self.library()
        state = (lib.collection, lib.count(), lib.store.count_segments())
        with self._map_lock:  # one computation at a time; a visitor who waited gets its result
            cached = self._map_cache
            if cached and cached[0] == state:
                return cached[1]
            meta, vecs = lib.vectors()
            layout = None
            if len(meta):
                path = Path(self.settings.data_dir) / "soundalike.map" / f"{lib.collection}.npz"
                layout = MapLayout.load(path, meta, vecs)
                if layout is None:
                    layout = compute_layout(meta, vecs)
                    try:
                        layout.save(path)
                    except OSError:
                        pass  # a read-only data folder: computed again after a restart
            self._map_cache = (state, layout)
            return layout

    def warm_map(self) -> threading.Thread:
        """Compute the map in the background (after the library changed), so a visitor opening
        the map tab does not wait for it."""
        def work() -> None:
            try:
                self.library_map()
            except (ModelUnavailable, StoreError):
                pass

        thread = threading.Thread(target=work, name="map", daemon=True)
        thread.start()
        return thread

    def map_pick(self, pick: str) -> str | None:
        """The file id of a clicked map point ("<layout key>:<row>"); None when the point is not
        in the map or the map changed since it was drawn."""
        key, _, row = (pick or "").partition(":")
        layout = self.library_map()
        if layout is None or key != layout.key or not row.isdigit() or int(row) >= len(layout):
            return None
        return layout.ids[int(row)]
