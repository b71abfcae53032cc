"""The bounded life of the files written for visitors: Gradio's upload cache, excerpts made for
players, REST uploads while their request or job runs. Files in use are spared; the rest are swept
by age and total size (sweeper.py), in a background housekeeper that also runs other chores."""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from .settings import Settings
from .sweeper import Housekeeper, SweepReport, Sweeper


class VisitorFiles:
    def __init__(self, settings: Settings, never: Callable[[], list[Path]], chores: Iterable[Callable[[float | None], object]] = ()):
        self.settings = settings
        work = settings.work_dir.resolve()
        self.gradio_dir = work / "gradio"  # Gradio's upload cache and the copies it makes for players
        self.excerpt_dir = work / "excerpts"
        self._request_dir = work / "requests"  # REST uploads while a request (or its scan job) runs
        self.never = never  # folders never swept (the media roots, the data folder)
        self.chores = list(chores)  # more work for each round (forget old jobs, save mirrors)
        self._in_use: Counter[Path] = Counter()
        self._in_use_lock = threading.Lock()
        self.protect_hooks: list[Callable[[], Iterable[str | Path]]] = []  # more paths the sweeper must spare
        self._sweeper: Sweeper | None = None
        self.housekeeper: Housekeeper | None = None

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
                protect=self.protected, never=self.never(),
            )
        return self._sweeper

    def housekeep(self, now: float | None = None) -> SweepReport:
        """One round of chores: the other chores first, then sweep visitor files."""
        for chore in self.chores:
            chore(now)
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
