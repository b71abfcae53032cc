"""The real app (`python app.py`) in its own process on a free loopback port: for the soak
benchmark and for the tests that talk to the app over HTTP or drive it in a browser."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .common import REPO


@contextmanager
def app_process(data_dir: Path, env: dict[str, str], log: Path, *, argv: list[str] | None = None, wait_model: bool = True):
    """The app on a port it picks itself (no race for a free port): its URL is read from the card
    it writes into its data folder once it listens. The app loads its model in the background;
    with wait_model, this waits until it is ready (or has failed for good), else only until it serves."""
    import httpx

    from search_core.appfile import read_card

    e = {**os.environ, "SOUNDALIKE_DATA_DIR": str(data_dir), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": "0",
         "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **env}
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(argv or [sys.executable, "app.py"], cwd=REPO, env=e, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300  # a cold start loads the model and opens the library
            while True:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the app did not start:\n{log.read_text()[-3000:]}")
                card = read_card(data_dir)
                if card is not None and card.pid == proc.pid:
                    try:
                        health = httpx.get(f"{card.url}/api/health", timeout=2)
                        if not wait_model or health.status_code == 200 or "still loading" not in health.text:
                            break
                    except httpx.HTTPError:
                        pass
                time.sleep(0.5)
            yield card.url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


