"""Start the real app (`python app.py`) in a subprocess on a free loopback port, for HTTP and browser tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from .conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(data_dir: Path, **env: str):
    port = free_port()
    e = {**os.environ, "SOUNDALIKE_DATA_DIR": str(data_dir), "SOUNDALIKE_MODEL": "aisfx", "GRADIO_SERVER_NAME": "127.0.0.1",
         "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **env}
    log = (data_dir.parent / f"app-{port}.log")
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=e, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"app exited early:\n{log.read_text()}")
                try:
                    httpx.get(f"{url}/api/health", timeout=2)
                    break  # any HTTP answer: the server is up (health is 503 without a model)
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"app did not start:\n{log.read_text()}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
