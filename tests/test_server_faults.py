"""Faults of a real Milvus server under the running app and the CLI (the session's server, killed
with SIGKILL and restarted on its own data and port; see benchmarks/milvus_server.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx

from .apprunner import running_app
from .conftest import REPO, wait_for_progress, write_many

FILES = 200


def cli(args, data, env, **popen):
    e = {**os.environ, "SOUNDALIKE_DATA_DIR": str(data), "SOUNDALIKE_MODEL": "mfcc", **env}
    return subprocess.Popen([sys.executable, "-m", "search_core", *args], cwd=REPO, env=e, text=True, **popen)


def test_server_killed_mid_index_then_restarted_under_the_running_app(tmp_path, milvus):
    """kill -9 of the server while `index` writes and while the app serves: the CLI ends with a
    clear message (no traceback), the app answers 503 and keeps serving; once the server is back
    (same data, same port) the app searches again without a restart, and the same `index`
    command completes the library: every file once, nothing lost, nothing twice."""
    folder = tmp_path / "many"
    write_many(folder, FILES)
    env = {"MILVUS_URI": milvus.uri, "SOUNDALIKE_LIBRARY": f"t{uuid.uuid4().hex[:10]}"}
    query = ("q.wav", (folder / "s005.wav").read_bytes())

    # The app, on the same server and library (its own data folder: visitor files, logs).
    with running_app(tmp_path / "app", SOUNDALIKE_MODEL="mfcc", **env) as url, httpx.Client(base_url=url, timeout=120) as app:
        err = tmp_path / "index.err"
        with err.open("w") as out:
            proc = cli(["index", str(folder)], tmp_path / "cli", env, stdout=subprocess.PIPE, stderr=out)
            wait_for_progress(proc, err, FILES, 130)  # two batches of 64 stored, the rest not yet
            milvus.kill()
            stdout, _ = proc.communicate(timeout=120)
        stderr = err.read_text(errors="replace")
        assert proc.returncode != 0
        assert f"Lost the connection to Milvus at {milvus.uri}" in stderr or f"Cannot open Milvus at {milvus.uri}" in stderr, stderr[-2000:]
        assert "Traceback" not in stderr, stderr[-3000:]

        r = app.post("/api/search", files={"file": query})
        assert r.status_code == 503, r.text
        assert "Milvus" in r.json()["detail"]
        assert app.get("/").status_code == 200  # the UI still loads

        milvus.restart()
        # The app reconnects on its next call (no restart of the app); while the restarted
        # server still loads the collection, a search may answer 503, never anything else.
        deadline = time.time() + 240
        while True:
            r = app.post("/api/search", files={"file": query}, data={"top_k": "1"})
            assert r.status_code in (200, 503), r.text
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(2)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == 1

    before = json.loads(subprocess.run([sys.executable, "-m", "search_core", "stats", "--json"], cwd=REPO, capture_output=True, text=True,
                                       env={**os.environ, "SOUNDALIKE_DATA_DIR": str(tmp_path / "cli"), "SOUNDALIKE_MODEL": "mfcc", **env}).stdout)["count"]
    assert 0 < before < FILES
    rerun = cli(["index", str(folder), "--json"], tmp_path / "cli", env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-3000:]
    report = json.loads(stdout)
    assert report["failed"] == [] and report["unchanged"] == before and report["added"] == FILES - before

    from search_core.store import Store, collection_name

    store = Store(milvus.uri, collection_name(env["SOUNDALIKE_LIBRARY"], "mfcc"), "mfcc", 38)
    assert store.count() == FILES and store.count_segments() == FILES  # one row per (short) file: nothing twice
    paths = store.ids_for_paths([str((folder / f"s{i:03d}.wav").resolve()) for i in range(FILES)])
    assert sorted(len(v) for v in paths.values()) == [1] * FILES
    hit = store.search(store.get([paths[str((folder / "s123.wav").resolve())][0]], with_vectors=True)[0]["embedding"], 1)[0]
    assert hit.name == "s123"
    store.drop()
