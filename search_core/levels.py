"""Templates' background levels (background.py), kept on disk between processes.

A level costs ~60 ms a template (its best score over 45 s of background), about seven times
decoding and building the template. A scan of a new recording meets dozens of library sounds it
has not verified before; a live monitor then spends seconds on them in one step and reports late
(on the wild benchmark's paced streams the slowest detections came from such steps). A level
depends only on the template and on the scoring code, so it is computed once and kept: by the
template's content (its variants' arrays) and by a fingerprint of warped.py and background.py, so
a change to either starts afresh rather than reusing levels it would not compute.

The file (`background_levels.txt` in the data directory) is append-only, one `key level` line per
template: processes that share a library (the app, monitors, the CLI) append without locks (a line
is one small O_APPEND write), a partial or unknown line is ignored, a repeated key is harmless.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

FILE_NAME = "background_levels.txt"
PAUSE_SECONDS = 0.5  # how often a waiting warm-up looks again whether real-time work still runs


@lru_cache(maxsize=1)
def code_version() -> str:
    """What the levels depend on besides the template: the scoring code and the background."""
    from . import background, warped

    h = hashlib.blake2b(digest_size=8)
    for module in (warped, background):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def template_key(tpl) -> str:
    """A warped.WarpTemplate's content, as the level sees it."""
    h = hashlib.blake2b(digest_size=16)
    h.update(code_version().encode())
    for v in tpl.variants:
        h.update(f"{v.scale}:{v.channel}:{v.mask.shape}".encode())
        h.update(np.ascontiguousarray(v.env, np.float32).tobytes())
        h.update(np.ascontiguousarray(v.mask).tobytes())
    return h.hexdigest()


class LevelFile:
    """Levels by template key, read from `path` at first use and appended to as they are made."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._levels: dict[str, float] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, float]:
        levels: dict[str, float] = {}
        try:
            text = self.path.read_text(errors="replace")
        except OSError:
            return levels
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and len(parts[0]) == 32:
                try:
                    levels[parts[0]] = float(parts[1])
                except ValueError:
                    continue
        return levels

    def _kept(self) -> dict[str, float]:
        """The levels, read from the file at first use (call with the lock held)."""
        if self._levels is None:
            self._levels = self._load()
        return self._levels

    def get(self, key: str) -> float | None:
        with self._lock:
            return self._kept().get(key)

    def put(self, key: str, level: float) -> None:
        with self._lock:
            self._kept()[key] = level
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, f"{key} {level!r}\n".encode())
                finally:
                    os.close(fd)
            except OSError:
                pass  # a read-only data directory: the level is still kept for this process

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept())


def warm(scanner, limit: int | None = None, stop: threading.Event | None = None,
         busy: Callable[[], bool] | None = None) -> tuple[int, int]:
    """The landmark index, then the templates and levels of the library's first `limit` segments
    (by default as many as the verifier's template cache holds: all of a library that fits it), so
    that a live scan's first minutes are not spent on them; only levels not kept already are
    computed (~0.07 s each). While `busy()` says real-time work runs, it waits: that work computes
    the few levels it needs itself, and on 2 cores a warm-up beside it starved a Live session
    (measured: 4 s of audio scanned in the first 25 s, 9 s in 150 s with a browser beside it).
    Returns (segments, levels computed)."""
    from .matching import segment_template

    if getattr(scanner, "landmarks", None) is not None:
        scanner.landmarks.refresh()
    verifier = scanner.verifier
    if getattr(verifier, "levels", None) is None or not getattr(verifier, "background", False):
        return 0, 0
    limit = verifier.cache.size if limit is None else limit
    before = len(verifier.levels)
    rows = []  # read first: the loop below may wait a long time, and a store iterator should not
    for row in scanner.library.store.iterate(("file_id", "path", "duration", "seg_start", "seg_end"), files_only=False):
        if len(rows) >= limit:
            break
        rows.append(row)
    seen = 0
    for row in rows:
        while busy is not None and busy() and not (stop is not None and stop.is_set()):
            time.sleep(PAUSE_SECONDS)
        if stop is not None and stop.is_set():
            break
        seen += 1
        tpl, _ = segment_template(verifier, row["path"], float(row["seg_start"]), float(row["seg_end"]), row["duration"])
        if tpl is not None:
            verifier.level(tpl)
    return seen, len(verifier.levels) - before


def try_warm(scanner, stop: threading.Event | None = None, busy: Callable[[], bool] | None = None) -> bool:
    """`warm`, where a library that cannot be read now is not an error: its scans prepare the
    templates they meet instead, so the failure is a warning on stderr. Returns whether it warmed."""
    try:
        warm(scanner, stop=stop, busy=busy)
    except Exception as exc:
        print(f"warning: the library's templates could not be prepared ahead ({exc}); scans prepare them as they meet them",
              file=sys.stderr, flush=True)
        return False
    return True


def warm_in_background(scanner, busy: Callable[[], bool] | None = None) -> threading.Thread:
    """`try_warm` on a daemon thread: a serving app's first scans and Live sessions are not slowed
    by levels it can compute while nobody waits (and it waits while `busy()`)."""
    thread = threading.Thread(target=try_warm, args=(scanner,), kwargs={"busy": busy}, name="levels", daemon=True)
    thread.start()
    return thread


__all__ = ["FILE_NAME", "LevelFile", "code_version", "template_key", "try_warm", "warm", "warm_in_background"]
