"""Faults of a real Milvus server under the running app and the CLI (the session's server, killed
with SIGKILL and restarted on its own data and port; see benchmarks/milvus_server.py)."""
from __future__ import annotations

import json
import os
import re
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


def test_two_sharded_indexers_at_once_one_killed_and_run_again_store_each_file_once(tmp_path, milvus):
    """`index --shard 1/2` and `--shard 2/2` on one folder at the same time into the real server;
    the second is killed (SIGKILL) midway and run again: every file is stored once, by one of them."""
    folder = tmp_path / "many"
    write_many(folder, FILES)
    env = {"MILVUS_URI": milvus.uri, "SOUNDALIKE_LIBRARY": f"s{uuid.uuid4().hex[:10]}"}
    one = cli(["index", str(folder), "--shard", "1/2", "--json"], tmp_path / "one", env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = tmp_path / "two.err"
    with err.open("w") as out:
        two = cli(["index", str(folder), "--shard", "2/2", "--json"], tmp_path / "two", env, stdout=subprocess.PIPE, stderr=out)
        deadline = time.time() + 300
        while time.time() < deadline and two.poll() is None and "indexing shard 2/2" not in err.read_text(errors="replace"):
            time.sleep(0.05)
        sizes = []
        while time.time() < deadline and two.poll() is None:
            sizes = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+)", err.read_text(errors="replace")) if int(b) > 2]
            if sizes and max(a for a, _ in sizes) >= 70:
                break
            time.sleep(0.02)
        assert two.poll() is None and sizes, "shard 2/2 finished before it could be killed"
        two.kill()
        two.wait(timeout=60)
    out_one, err_one = one.communicate(timeout=600)
    assert one.returncode == 0, err_one[-3000:]
    first = json.loads(out_one)
    assert first["failed"] == [] and first["added"] + first["other_shards"] == FILES and 0 < first["added"] < FILES

    from search_core.store import Store, collection_name

    store = Store(milvus.uri, collection_name(env["SOUNDALIKE_LIBRARY"], "mfcc"), "mfcc", 38)
    stored_by_two = store.count() - first["added"]
    assert 0 < stored_by_two < FILES - first["added"]  # killed midway, after some batches were stored
    again = cli(["index", str(folder), "--shard", "2/2", "--json"], tmp_path / "two", env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_two, err_two = again.communicate(timeout=600)
    assert again.returncode == 0, err_two[-3000:]
    second = json.loads(out_two)
    assert second["unchanged"] == stored_by_two and second["other_shards"] == first["added"]
    assert first["added"] + second["unchanged"] + second["added"] == FILES
    assert store.count() == FILES and store.count_segments() == FILES  # every file once
    paths = store.ids_for_paths([str((folder / f"s{i:03d}.wav").resolve()) for i in range(FILES)])
    assert sorted(len(v) for v in paths.values()) == [1] * FILES
    store.drop()
