"""What the front ends (Gradio UI, REST API) share: one lazily opened Library, the hosted-demo
permission rules, safe handling of uploads, the media-path guard, background jobs, and the
bounded life of the files written for visitors (see sweeper.py).

Permission rules (a hosted demo is public):
- read (search, stats, play a library clip, the map): always open;
- index the bundled sample set: always allowed (idempotent, only adds known files);
- write (index the visitor's own files): needs the operator token when one is set, is refused in
  public mode without one, and is open on a private/local run;
- destroy (delete an item, clear the library): needs the token when one is set, else
  SOUNDALIKE_ADMIN=1; refused otherwise.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from . import operations
from .audio import AUDIO_EXTENSIONS, AudioError, load_audio, require_sound
from .dupes import DupesResult
from .embedders import ModelUnavailable
from .indexer import IndexReport, Progress
from .libmap import MapLayout, compute_layout
from .search import SearchResult
from .settings import Settings
from .status import AppStatus
from .store import Store, StoreError
from .sweeper import Housekeeper, SweepReport, Sweeper

FORMAT_EXT = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff", "AU": ".au", "CAF": ".caf", "W64": ".w64", "RF64": ".wav"}


class Busy(StoreError):
    """A job of this kind is already running (409 in the REST API)."""


class PermissionDenied(Exception):
    """The caller may not do this here; the message says how an operator enables it."""


class ModelLoading(ModelUnavailable):
    """The model is still loading in the background (503 in the REST API; the UI says so)."""

    def __init__(self):
        super().__init__("The model is still loading (a first start may be downloading it); try again in a minute.")


@dataclass
class Upload:
    stored: Path  # under settings.upload_dir, generated name
    name: str  # the visitor's file name (stem), for display


@dataclass
class Job:
    id: str
    kind: str = "index"  # index | scan
    state: str = "queued"  # queued | running | done | failed
    done: float = 0  # files (index) or seconds of the recording (scan)
    total: float = 0
    current: str = ""
    report: dict | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None  # when it ended; the job is forgotten job_retention seconds later

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "kind", "state", "done", "total", "current", "report", "error")}


def _safe_stem(name: str) -> str:
    stem = Path(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return re.sub(r"[^\w\- ]+", "_", stem).strip()[:80] or "upload"


class Service:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._library = None
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None  # the background load (load_in_background)
        self._load_error: tuple[float, Exception] | None = None  # when and why the last load failed
        # Proves a request comes from the operator on this machine (see appfile.py, local_api.py).
        self.local_secret = secrets.token_urlsafe(32)
        self.jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._map_cache: tuple | None = None
        self._map_lock = threading.Lock()
        self._dupes_cache: tuple | None = None
        self._dupes_lock = threading.Lock()
        self._scanner = None
        work = self.settings.work_dir.resolve()
        self.gradio_dir = work / "gradio"  # Gradio's upload cache and the copies it makes for players
        self.excerpt_dir = work / "excerpts"
        self._request_dir = work / "requests"  # REST uploads while a request (or its scan job) runs
        self._in_use: Counter[Path] = Counter()
        self._in_use_lock = threading.Lock()
        self.protect_hooks: list[Callable[[], Iterable[str | Path]]] = []  # more paths the sweeper must spare
        self._sweeper: Sweeper | None = None
        self.housekeeper: Housekeeper | None = None

    # -- library -------------------------------------------------------------------------------
    @property
    def library(self):
        """Opened on first use. With a background load (the app's), callers meet ModelLoading
        until it ends; a failure is remembered for `load_retry` seconds (a Space's visitors do not
        each wait for a download that just failed), then the next call tries again."""
        loader = self._loader
        if loader is not None and loader.is_alive() and threading.current_thread() is not loader:
            raise ModelLoading()
        with self._lock:
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
        with self._lock:
            return self._start_loader()

    def _start_loader(self) -> threading.Thread:
        def load() -> None:
            try:
                lib = self.library
                print(f"Soundalike: model {lib.model} ready, {lib.count()} sounds in the library.", flush=True)
                if self.housekeeper is not None:
                    self.warm_map()
            except (ModelUnavailable, StoreError) as exc:
                print(f"warning: {exc}", flush=True)

        if self._loader is None or not self._loader.is_alive():
            self._loader = threading.Thread(target=load, name="model-loader", daemon=True)
            self._loader.start()
        return self._loader

    def status(self) -> AppStatus:
        """The header's one line and its details (server paths redacted on a public demo)."""
        from .status import failed_status, loading_status, ready_status

        public, known = self.settings.public, self._server_paths()
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

    def _server_paths(self) -> tuple[str, ...]:
        s = self.settings
        return (str(s.data_dir), str(Path(s.data_dir).resolve()), s.uri if s.is_lite else "")

    def visible_error(self, exc: BaseException) -> str:
        """An error's message as a visitor may see it (no server paths on a public demo)."""
        from .status import redact_paths

        return redact_paths(str(exc), self._server_paths()) if self.settings.public else str(exc)

    @property
    def sample_dir(self) -> Path:
        return Path(self.settings.sample_dir).resolve()

    def media_roots(self) -> list[Path]:
        roots = [self.sample_dir, Path(self.settings.upload_dir).resolve()]
        roots += [Path(p).resolve() for p in self.settings.media_dirs]
        return roots

    def playable(self, path: str) -> Path | None:
        """The file for a stored path, only if it lies inside a media root (never anything else)."""
        try:
            p = Path(path).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not p.is_file():
            return None
        for root in self.media_roots():
            if p.is_relative_to(root):
                return p
        return None

    def audio_for_id(self, item_id: str) -> tuple[Path, dict] | None:
        if not re.fullmatch(r"[0-9a-f]{64}", item_id or ""):
            return None
        row = self.library.get(item_id)
        if row is None:
            return None
        path = self.playable(row["path"])
        return (path, row) if path else None

    # -- visitor files: bounded life ---------------------------------------------------------------
    def request_dir(self) -> Path:
        self._request_dir.mkdir(parents=True, exist_ok=True)
        return self._request_dir

    @contextmanager
    def in_use(self, *paths):
        """Marks files (or folders) as being worked on, so the sweeper spares them meanwhile."""
        held = [Path(p).resolve() for p in paths if p]
        with self._in_use_lock:
            self._in_use.update(held)
        try:
            yield
        finally:
            with self._in_use_lock:
                self._in_use.subtract(held)
                self._in_use = +self._in_use  # drop the zero counts

    def protected(self) -> set[Path]:
        with self._in_use_lock:
            paths = set(self._in_use)
        for hook in self.protect_hooks:
            paths.update(Path(p) for p in hook())
        return paths

    @property
    def sweeper(self) -> Sweeper:
        if self._sweeper is None:
            s = self.settings
            self._sweeper = Sweeper(
                [self.gradio_dir, self.excerpt_dir, self._request_dir],
                max_age=s.cache_max_age, max_bytes=int(s.cache_max_mb * 2**20), grace=min(60.0, s.cache_max_age),
                protect=self.protected, never=[*self.media_roots(), Path(s.data_dir).resolve()],
            )
        return self._sweeper

    def housekeep(self, now: float | None = None) -> SweepReport:
        """One round of chores: sweep visitor files, forget old jobs, save changed search mirrors."""
        self.prune_jobs(now)
        Store.save_mirrors()
        return self.sweeper.sweep(now)

    def start_housekeeping(self) -> Housekeeper:
        """The app's background sweeper (every sweep_interval seconds, or soon after `poke`)."""
        if self.housekeeper is None:
            self.sweeper  # refuse a temp folder that overlaps the library before serving anything
            self.housekeeper = Housekeeper([self.housekeep], self.settings.sweep_interval).start()
        return self.housekeeper

    def poke_housekeeper(self) -> None:
        if self.housekeeper is not None:
            self.housekeeper.poke()

    # -- permissions ---------------------------------------------------------------------------
    def _token_ok(self, token: str | None) -> bool:
        expected = self.settings.admin_token
        return bool(expected) and token is not None and hmac.compare_digest(token.encode(), expected.encode())

    def can_write(self, token: str | None = None) -> bool:
        if self.settings.admin_token:
            return self._token_ok(token)
        return not self.settings.public

    def can_destroy(self, token: str | None = None) -> bool:
        if self.settings.admin_token:
            return self._token_ok(token)
        return self.settings.admin

    def require_write(self, token: str | None = None) -> None:
        if not self.can_write(token):
            raise PermissionDenied(
                "Adding files is disabled on this public demo. The operator can allow it with "
                "SOUNDALIKE_ADMIN_TOKEN (and send it as a bearer token)."
            )

    def require_destroy(self, token: str | None = None) -> None:
        if not self.can_destroy(token):
            raise PermissionDenied(
                "Deleting is disabled. The operator can enable it with SOUNDALIKE_ADMIN=1 or SOUNDALIKE_ADMIN_TOKEN."
            )

    # -- operations ----------------------------------------------------------------------------
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

    def dupes(self, threshold: float | None = None, progress: Callable | None = None) -> DupesResult:
        """Near-duplicate groups; cached per library state and threshold (the library tab and the
        REST API ask again without paying again)."""
        from .dupes import DEFAULT_THRESHOLD, check_threshold, find_dupes

        threshold = check_threshold(DEFAULT_THRESHOLD if threshold is None else threshold)
        key = (self.library.count(), self.library.store.count_segments(), threshold)
        with self._dupes_lock:  # one comparison at a time; a caller that waited gets its result
            cached = self._dupes_cache
            if cached and cached[0] == key:
                return cached[1]
            result = find_dupes(self.library, threshold, progress=progress)
            self._dupes_cache = (key, result)
            return result

    def delete_copies(self, threshold: float | None = None, token: str | None = None) -> tuple[int, list[str]]:
        """Deletes every copy but the suggested keeper of each duplicate group (operator only).
        Returns (files deleted, their names)."""
        self.require_destroy(token)
        copies = self.dupes(threshold).copies
        n = self.library.delete([it["id"] for it in copies]) if copies else 0
        self._changed()
        return n, [it["name"] for it in copies]

    def index_sample(self, progress: Progress | None = None) -> IndexReport:
        return self._indexed(self.library.index([self.sample_dir], progress=progress))

    def index_uploads(self, uploads: list[Upload], label: str | None = None, progress: Progress | None = None) -> IndexReport:
        names = {str(u.stored.resolve()): u.name for u in uploads}
        label = (label or "").strip()[:100] or "uploads"
        return self._indexed(self.library.index([u.stored for u in uploads], default_label=label, progress=progress, names=names))

    def _indexed(self, report: IndexReport) -> IndexReport:
        self._changed()
        return report

    def _changed(self) -> None:
        """The library changed: cached views of it (map, duplicates) are stale. A serving app
        computes the new map at once, in the background."""
        self._map_cache = None
        self._dupes_cache = None
        if self.housekeeper is not None:
            self.warm_map()

    def delete(self, item_id: str, token: str | None = None) -> int:
        self.require_destroy(token)
        self._changed()
        return self.library.delete([item_id])

    def clear(self, token: str | None = None) -> None:
        self.require_destroy(token)
        self._changed()
        self.library.clear()

    def stats(self) -> dict:
        return self.library.stats()

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

    # -- uploads -------------------------------------------------------------------------------
    def ingest(self, files: Iterable[tuple[str, Path]]) -> tuple[list[Upload], list[tuple[str, str]]]:
        """Check each (original name, temp path) by content, expand zips, and store accepted audio
        under generated names in the upload folder. Returns (uploads, rejected with reasons)."""
        upload_dir = Path(self.settings.upload_dir)
        upload_dir.mkdir(parents=True, exist_ok=True)
        accepted: list[Upload] = []
        rejected: list[tuple[str, str]] = []
        for original, path in files:
            display = Path(str(original).replace("\\", "/")).name or "upload"
            path = Path(path)
            try:
                if zipfile.is_zipfile(path):
                    a, r = self._ingest_zip(display, path)
                    accepted += a
                    rejected += r
                else:
                    accepted.append(self._store(display, path))
            except AudioError as exc:
                rejected.append((display, exc.reason))
        return accepted, rejected

    def _ingest_zip(self, display: str, path: Path) -> tuple[list[Upload], list[tuple[str, str]]]:
        accepted, rejected = [], []
        limit = self.settings.max_upload_bytes
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                if len(members) > self.settings.max_zip_members:
                    return [], [(display, f"zip holds {len(members)} files; the limit is {self.settings.max_zip_members}")]
                for m in members:
                    inner = Path(m.filename.replace("\\", "/")).name
                    if not inner or inner.startswith(".") or Path(inner).suffix.lower() not in AUDIO_EXTENSIONS:
                        continue
                    if m.file_size > limit:
                        rejected.append((inner, f"file is {m.file_size / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB"))
                        continue
                    with tempfile.TemporaryDirectory(dir=self.request_dir()) as tmp:
                        target = Path(tmp) / "member"
                        with zf.open(m) as src, target.open("wb") as dst:
                            copied = 0
                            while chunk := src.read(1 << 20):  # stop zip bombs at the size limit
                                copied += len(chunk)
                                if copied > limit:
                                    raise AudioError(inner, "file is larger than the upload limit")
                                dst.write(chunk)
                        try:
                            accepted.append(self._store(inner, target))
                        except AudioError as exc:
                            rejected.append((inner, exc.reason))
        except (zipfile.BadZipFile, OSError) as exc:
            rejected.append((display, f"not a readable zip file ({exc})"))
        return accepted, rejected

    def _store(self, display: str, path: Path) -> Upload:
        """Content check (decodes the file), then copy to <upload_dir>/<sha256><ext>."""
        require_sound(load_audio(path, 16000, max_seconds=self.settings.max_index_seconds, max_bytes=self.settings.max_upload_bytes, name=display))
        ext = self._extension(path, display)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        stored = Path(self.settings.upload_dir).resolve() / f"{digest}{ext}"
        if not stored.exists():
            shutil.copyfile(path, stored)
        return Upload(stored, _safe_stem(display))

    @staticmethod
    def _extension(path: Path, display: str) -> str:
        import soundfile as sf

        try:
            return FORMAT_EXT.get(sf.info(str(path)).format, ".wav")
        except Exception:
            ext = Path(display).suffix.lower()
            return ext if ext in AUDIO_EXTENSIONS else ".audio"

    # -- background jobs (REST API) --------------------------------------------------------------
    def job(self, job_id: str) -> Job | None:
        """A job by id; None when unknown or finished longer than job_retention ago."""
        self.prune_jobs()
        return self.jobs.get(job_id)

    def prune_jobs(self, now: float | None = None) -> int:
        """Forget jobs that finished more than job_retention seconds ago (memory stays flat)."""
        cutoff = (time.time() if now is None else now) - self.settings.job_retention
        with self._jobs_lock:
            old = [k for k, j in self.jobs.items() if j.finished is not None and j.finished < cutoff]
            for k in old:
                del self.jobs[k]
        return len(old)

    def start_job(self, work: Callable[[Callable], object], kind: str = "index", cleanup: Callable[[], None] | None = None,
                  uses: Path | None = None) -> Job:
        """Run `work(progress)` in a thread; one job of each kind at a time (scans share 2 cores).
        `uses`: a file or folder the job reads, spared by the sweeper until the job ends."""
        self.prune_jobs()
        with self._jobs_lock:
            busy = any(j.kind == kind and j.state in ("queued", "running") for j in self.jobs.values())
            if kind == "index" and (busy or self.library.indexing):
                raise Busy("Another indexing job is running on this library; try again when it finishes.")
            if kind == "scan" and busy:
                raise Busy("A scan is already running on this server; try again when it finishes.")
            job = Job(uuid.uuid4().hex, kind)
            self.jobs[job.id] = job
        held = ExitStack()
        held.enter_context(self.in_use(uses))  # from now until the job ends

        def progress(done: float, total: float, name: str = "") -> None:
            job.done, job.total, job.current = done, total, name

        def run() -> None:
            job.state = "running"
            try:
                out = work(progress)
                job.report = out if isinstance(out, dict) else out.as_dict()
                job.state = "done"
            except Exception as exc:  # reported through the job, never lost
                job.error = str(exc)
                job.state = "failed"
            finally:
                job.finished = time.time()
                held.close()
                if cleanup:
                    cleanup()

        threading.Thread(target=run, name=f"{kind}-{job.id[:8]}", daemon=True).start()
        return job

    # -- moments: scan and find ------------------------------------------------------------------
    @property
    def scanner(self):
        """One Scanner per library, so library templates are decoded once across scans."""
        from .scan import Scanner

        lib = self.library
        with self._lock:
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
        from .scan import DEFAULT_THRESHOLD, find

        return find(query, recording, self.settings, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                    query_name=query_name, recording_name=recording_name, progress=progress)

    def excerpt(self, path: str | Path, start: float, end: float, *, keep: int = 256) -> Path:
        """A WAV of [start, end] seconds of an audio file, for players that cannot seek by themselves.
        Written to a temp folder of this process; the oldest beyond `keep` are removed (bounded disk)."""
        from .recording import Recording

        import soundfile as sf

        key = hashlib.sha256(f"{Path(path).resolve()}|{start:.3f}|{end:.3f}".encode()).hexdigest()[:24]
        out = self.excerpt_dir / f"{key}.wav"
        try:
            os.utime(out)  # reused: young again, so it is not swept before Gradio copies it
        except FileNotFoundError:
            pass
        if not out.exists():
            rec = Recording(path)
            self.excerpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".part")
            sf.write(str(tmp), rec.read(max(0.0, start), min(rec.duration, end)), rec.rate, format="WAV")
            tmp.replace(out)
            old = sorted(self.excerpt_dir.glob("*.wav"), key=lambda p: p.stat().st_mtime)
            for p in old[:-keep]:
                p.unlink(missing_ok=True)
        return out

    # -- the library map -----------------------------------------------------------------------
    def library_map(self) -> MapLayout | None:
        """The library's 2-D layout (None while it is empty): computed once per library state,
        kept in memory and beside the library, so opening the map tab costs no computation."""
        lib = self.library
        state = (lib.collection, lib.count(), lib.store.count_segments())
        with self._map_lock:  # one computation at a time; a visitor who waited gets its result
            cached = self._map_cache
            if cached and cached[0] == state:
                return cached[1]
            meta, vecs = lib.vectors()
            layout = None
            if len(meta):
                path = self.settings.data_dir / "soundalike.map" / f"{lib.collection}.npz"
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

    def map_sound(self, pick: str) -> tuple[Path, dict] | None:
        """The playable file of a clicked map point ("<layout key>:<row>"); None when the point
        is not a playable library sound or the map changed since it was drawn."""
        key, _, row = (pick or "").partition(":")
        layout = self.library_map()
        if layout is None or key != layout.key or not row.isdigit() or int(row) >= len(layout):
            return None
        return self.audio_for_id(layout.ids[int(row)])
