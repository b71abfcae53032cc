"""What the front ends (Gradio UI, REST API, the CLI through a running app) share.

`Service` composes one collaborator per concern and keeps only the library operations themselves
(search, index, delete, dupes, scan, find), each a thin, checked call into the engine:
- `loader`  (loading.py)       — the library opened once, in the background, with the status line;
- `access`  (access.py)        — permissions and what a public demo's visitor may read in an error;
- `media`   (media.py)         — which files may be played, excerpts of them;
- `uploads` (uploads.py)       — visitors' files checked, zips expanded, stored by content hash;
- `jobs`    (jobs.py)          — the REST API's background jobs;
- `files`   (visitor_files.py) — the bounded life of visitor files, and the housekeeper;
- `views`   (library_views.py) — the map and duplicate groups, cached per library state;
- `monitors` (monitor/manager.py) — the operator's stream monitors, their events and counts;
- `live`    (monitor/sessions.py) — visitors' microphone sessions, within their limits.
A new capability is a new collaborator, not more methods here.
"""
from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path
from typing import Callable

import pandas as pd

from . import operations
from .access import Access, PermissionDenied
from .dupes import DupesResult
from .indexer import IndexReport, Progress
from .jobs import Busy, Job, Jobs
from .library_views import LibraryViews
from .libmap import MapLayout
from .loading import LibraryLoader, ModelLoading
from .media import Media
from .monitor.manager import Monitors
from .monitor.sessions import LiveSessions
from .search import SearchResult
from .settings import Settings
from .status import AppStatus
from .store import Store
from .uploads import Upload, Uploads
from .visitor_files import VisitorFiles

__all__ = ["Service", "Busy", "Job", "ModelLoading", "PermissionDenied", "Upload"]


class Service:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        # Proves a request comes from the operator on this machine (see appfile.py, local_api.py).
        self.local_secret = secrets.token_urlsafe(32)
        self.loader = LibraryLoader(self.settings, on_ready=self._loaded)
        self.access = Access(self.settings)
        self.views = LibraryViews(self.settings, lambda: self.library)
        self.files = VisitorFiles(self.settings, never=lambda: [*self.media.roots(), Path(self.settings.data_dir).resolve()],
                                  chores=[lambda now: self.jobs.prune(now), lambda now: Store.save_mirrors()])
        self.media = Media(self.settings, lambda: self.library, self.files.excerpt_dir)
        self.uploads = Uploads(self.settings, self.files.request_dir)
        self.jobs = Jobs(self.settings, self.files.in_use, indexing=lambda: self.library.indexing)
        self._scanner = None
        self._scanner_lock = threading.Lock()
        s = self.settings
        self.monitors = Monitors(lambda: self.scanner, limit=s.max_monitors)
        self.live = LiveSessions(lambda: self.scanner, lambda: self.files.excerpt_dir, seconds=s.live_seconds,
                                 sessions=s.live_sessions, per_visitor=s.live_per_visitor)
        self._configured_started = False

    @property
    def library(self):
        """The open Library (ModelLoading while the background load runs; see loading.py)."""
        return self.loader.library

    def status(self) -> AppStatus:
        """The header's one line and its details (server paths redacted on a public demo)."""
        return self.loader.status(self.settings.public, self.access.server_paths())

    def _loaded(self) -> None:
        if self.files.housekeeper is not None:  # a serving app: the map is ready when first opened
            self.views.warm_map()
            self._warm_levels()
            if not self._configured_started:  # and the operator's monitors follow their streams
                self._configured_started = True
                self.monitors.start_configured(self.settings.monitors_file)

    def _changed(self) -> None:
        """The library changed: cached views of it (map, duplicates) are stale. A serving app
        computes the new map at once, in the background."""
        self.views.changed()
        if self.files.housekeeper is not None:
            self.views.warm_map()
            self._warm_levels()

    def _warm_levels(self) -> threading.Thread | None:
        """The landmark index, the library's templates and their background levels, in the
        background (levels.py), so that the first scans and the Live tab's first minutes are not
        slowed by them; it waits while a Live session runs (that session needs the cores more)."""
        from .levels import warm_in_background

        try:
            scanner = self.scanner  # here: the loader's own thread may open the library while it loads
        except Exception:  # not open now: its first scan warms what it meets
            return None
        return warm_in_background(scanner, busy=lambda: self.live.running() > 0)

    # -- search ---------------------------------------------------------------------------------
    def search(self, query, top_k: int = 5, label: str | None = None, max_duration: float | None = None) -> pd.DataFrame:
        return self.similar(query, top_k, label, max_duration).frame

    @staticmethod
    def _check_top_k(top_k) -> int:
        top_k = int(top_k)
        if not 1 <= top_k <= 100:
            raise ValueError("top_k must be between 1 and 100")
        return top_k

    def similar(self, query, top_k: int = 5, label: str | None = None, max_duration: float | None = None) -> SearchResult:
        """Results, the suggested category and the query's embedding (the map draws it)."""
        top_k = self._check_top_k(top_k)
        if max_duration is not None and not (max_duration > 0):
            max_duration = None
        label = label or None
        if label is not None and len(label) > 512:
            raise ValueError("label is too long")
        return self.library.similar(query, top_k, label=label, max_duration=max_duration)

    def similar_by_id(self, item_id: str, top_k: int = 5) -> SearchResult:
        """"More like this" from a stored item (KeyError when the id is unknown)."""
        top_k = self._check_top_k(top_k)
        if not re.fullmatch(r"[0-9a-f]{64}", item_id or ""):
            raise KeyError(f"no item with id {str(item_id)[:80]!r} in this library")
        return self.library.similar_by_id(item_id, top_k)

    def stats(self) -> dict:
        return self.library.stats()

    # -- the library's contents -------------------------------------------------------------------
    def dupes(self, threshold: float | None = None, progress: Callable | None = None) -> DupesResult:
        return self.views.dupes(threshold, progress)

    def library_map(self) -> MapLayout | None:
        return self.views.library_map()

    def map_sound(self, pick: str) -> tuple[Path, dict] | None:
        """The playable file of a clicked map point; None when it is not a playable library sound
        or the map changed since it was drawn."""
        item_id = self.views.map_pick(pick)
        return self.media.audio_for_id(item_id) if item_id else None

    def delete_copies(self, threshold: float | None = None, token: str | None = None) -> tuple[int, list[str]]:
        """Deletes every copy but the suggested keeper of each duplicate group (operator only).
        Returns (files deleted, their names)."""
        self.access.require_destroy(token)
        copies = self.dupes(threshold).copies
        n = self.library.delete([it["id"] for it in copies]) if copies else 0
        self._changed()
        return n, [it["name"] for it in copies]

    def index_sample(self, progress: Progress | None = None) -> IndexReport:
        report = self.library.index([self.media.sample_dir], progress=progress)
        self._changed()
        return report

    def index_uploads(self, uploads: list[Upload], label: str | None = None, progress: Progress | None = None) -> IndexReport:
        names = {str(u.stored.resolve()): u.name for u in uploads}
        label = (label or "").strip()[:100] or "uploads"
        report = self.library.index([u.stored for u in uploads], default_label=label, progress=progress, names=names)
        self._changed()
        return report

    def delete(self, item_id: str, token: str | None = None) -> int:
        self.access.require_destroy(token)
        self._changed()
        return self.library.delete([item_id])

    def clear(self, token: str | None = None) -> None:
        self.access.require_destroy(token)
        with self.views.paused():
            self.library.clear()
        self._changed()

    # -- the operator's own commands: the CLI, through the app's local endpoints (local_api.py) ----
    # No permission check here: local_api admits only loopback requests that carry local_secret.
    def index_paths(self, paths: list[str], label: str | None = None, progress: Progress | None = None) -> dict:
        """Index files or folders of this machine in place, as `python -m search_core index` does."""
        out = operations.index(self.library, paths, label, progress)
        self._changed()
        return out

    def delete_local(self, ids: list[str], path: str | None = None) -> dict:
        out = operations.delete(self.library, ids, path)
        self._changed()
        return out

    def dupes_local(self, threshold: float, delete_copies: bool = False, progress: Callable | None = None) -> dict:
        out = operations.dupes(self.library, threshold, delete_copies, progress, find=lambda t, p: self.dupes(t, p))
        if delete_copies:
            self._changed()
        return out

    def scan_local(self, recording: str, threshold: float, progress=None) -> dict:
        return operations.scan(self.scanner, recording, threshold, progress)

    # -- moments: scan and find ------------------------------------------------------------------
    @property
    def scanner(self):
        """One Scanner per library, so library templates are decoded once across scans."""
        from .scan import Scanner

        lib = self.library
        with self._scanner_lock:
            if self._scanner is None or self._scanner.library is not lib:
                self._scanner = Scanner(lib)
            return self._scanner

    def check_recording(self, path: Path, name: str) -> float:
        """Open (and so check) a recording before a scan job is started; returns its duration."""
        return self.scanner.open(path, name).duration

    def scan(self, path: Path, threshold: float | None = None, name: str | None = None, progress=None):
        from .scan import DEFAULT_THRESHOLD

        return self.scanner.scan(path, threshold=DEFAULT_THRESHOLD if threshold is None else threshold, name=name, progress=progress)

    def find(self, query: Path, recording: Path, threshold: float | None = None, query_name: str | None = None,
             recording_name: str | None = None, progress=None):
        from .find import find
        from .scan import DEFAULT_THRESHOLD

        return find(query, recording, self.settings, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                    query_name=query_name, recording_name=recording_name, progress=progress)
