"""Start the real app (`python app.py`) in a subprocess on a free loopback port, for HTTP and browser tests."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.running import app_process


@contextmanager
def running_app(data_dir: Path, *, argv: list[str] | None = None, wait_model: bool = True, **env: str):
    """Yields the app's URL; its log is kept beside the data folder (pytest's tmp dir)."""
    log = data_dir.parent / f"app-{data_dir.name}-{time.time_ns()}.log"
    with app_process(data_dir, {"SOUNDALIKE_MODEL": "aisfx", **env}, log, argv=argv, wait_model=wait_model) as (url, _):
        yield url
