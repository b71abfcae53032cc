"""Bounded life for the files an app writes for its visitors.

A hosted demo writes a file for every upload, every result it hands to a player and every excerpt
it cuts; nothing else ever removes them. The `Sweeper` walks the folders it owns and removes:

1. every file older than `max_age` seconds. Age counts from the inode's change time (ctime), not
   the modification time: Gradio copies library files with their old mtime, and touches a cached
   copy each time it hands it out again, which renews its ctime, so a file still in use stays young;
2. then, while the files add up to more than `max_bytes`, the oldest ones first;

never a file younger than `grace` seconds (an upload being written or searched), never a
protected path (files in use, Gradio's cached examples) and never anything inside a library folder:
a folder to sweep that holds or lies in one is refused when the sweeper is made (links are not
followed, so nothing found under a swept folder can lie in a library folder). Empty folders
left behind go too.

`Housekeeper` runs a sweep (and any other periodic chores, such as forgetting old jobs) in a
daemon thread every `interval` seconds, or sooner when poked after a request that wrote files.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence


@dataclass
class SweepReport:
    removed_files: int = 0
    removed_bytes: int = 0
    kept_files: int = 0
    kept_bytes: int = 0


def _inside(path: Path, root: Path) -> bool:
    return path.is_relative_to(root)


class Sweeper:
    def __init__(
        self,
        folders: Iterable[str | Path],
        *,
        max_age: float,
        max_bytes: int,
        grace: float = 30.0,
        protect: Callable[[], Iterable[str | Path]] | None = None,
        never: Iterable[str | Path] = (),
    ):
        self.folders = [Path(f).resolve() for f in folders]
        self.never = [Path(n).resolve() for n in never]
        for folder in self.folders:
            for root in self.never:
                if _inside(folder, root) or _inside(root, folder):
                    raise ValueError(f"refusing to sweep {folder}: it overlaps the library folder {root}")
        self.max_age = float(max_age)
        self.max_bytes = int(max_bytes)
        self.grace = float(grace)
        self.protect = protect
        self._lock = threading.Lock()

    def _protected(self) -> set[Path]:
        return {Path(p).resolve() for p in (self.protect() if self.protect else ())}

    def _files(self) -> list[tuple[float, int, Path]]:
        """(ctime, size, path) of every file (links are not followed), oldest first."""
        found = []
        for folder in self.folders:
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    p = Path(dirpath) / name
                    try:
                        st = p.lstat()
                    except OSError:  # removed meanwhile
                        continue
                    found.append((st.st_ctime, st.st_size, p))
        found.sort(key=lambda f: f[0])
        return found

    def sweep(self, now: float | None = None) -> SweepReport:
        """One pass; safe to call from any thread (passes never overlap)."""
        with self._lock:
            now = time.time() if now is None else now
            protected = self._protected()
            report = SweepReport()
            files = self._files()
            total = sum(size for _, size, _ in files)
            for ctime, size, path in files:
                age = now - ctime
                too_old = age > self.max_age
                if not (too_old or total > self.max_bytes) or age < self.grace:
                    continue
                if path in protected or any(parent in protected for parent in path.parents):
                    continue
                try:
                    if path.lstat().st_ctime > ctime:  # handed out again since we looked: in use
                        continue
                    path.unlink()
                except OSError:
                    continue
                total -= size
                report.removed_files += 1
                report.removed_bytes += size
            self._remove_empty_dirs(now)
            report.kept_files, report.kept_bytes = len(files) - report.removed_files, total
            return report

    def _remove_empty_dirs(self, now: float) -> None:
        for folder in self.folders:
            for dirpath, _, names in os.walk(folder, topdown=False):
                d = Path(dirpath)
                if d == folder or names:
                    continue
                try:
                    if now - d.lstat().st_ctime >= self.grace and not any(d.iterdir()):
                        d.rmdir()
                except OSError:
                    continue


class Housekeeper:
    """Runs `chores` every `interval` seconds in a daemon thread, or soon after `poke()` (at most
    once per `min_gap` seconds). `stop()` ends the thread; tests call the chores directly."""

    def __init__(self, chores: Sequence[Callable[[], object]], interval: float, min_gap: float = 1.0):
        self.chores = list(chores)
        self.interval = max(0.1, float(interval))
        self.min_gap = min_gap
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Housekeeper":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="soundalike-housekeeper", daemon=True)
            self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run_once(self) -> None:
        for chore in self.chores:
            try:
                chore()
            except Exception as exc:  # a chore that fails must not stop the others (or the thread)
                print(f"warning: housekeeping: {exc}", flush=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            self.run_once()
            self._stop.wait(self.min_gap)
