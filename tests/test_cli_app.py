"""The CLI beside a running app, as a user meets it: real processes on one data folder.

Milvus Lite lets one process open a library file; while the app holds it, the CLI goes through
the app's local endpoints (loopback + the secret from the owner-only app card), and anything that
cannot get the file says so in one clear message, never a traceback.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import librosa
import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from search_core.appfile import APP_FILE, card_for_url, read_card
from search_core.local_api import SECRET_HEADER, is_loopback, local_router
from search_core.service import Service
from search_core.settings import Settings

from .apprunner import running_app
from .conftest import REPO, SAMPLE_DATA

CLIPS = ["voice/hedgewars_Hello.ogg", "voice/hedgewars_Incoming.ogg", "explosion/chromium_exploBig.ogg",
         "water/hedgewars_splash.ogg", "ui_click/wesnoth_button.ogg", "magic/wesnoth_magic-holy-1.ogg"]


def cli(args, data_dir: Path, **env) -> subprocess.CompletedProcess:
    e = {**os.environ, "SOUNDALIKE_DATA_DIR": str(data_dir), "SOUNDALIKE_MODEL": "aisfx", **env}
    return subprocess.run([sys.executable, "-m", "search_core", *args], cwd=REPO, env=e, capture_output=True, text=True, timeout=300)


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The real app on its own data folder, and a folder of the user's own sounds."""
    root = tmp_path_factory.mktemp("beside")
    mine = root / "my sounds"
    mine.mkdir()
    for rel in CLIPS:
        shutil.copy(SAMPLE_DATA / rel, mine / Path(rel).name)
    data = root / "data"
    with running_app(data) as url:
        yield url, data, mine
    # stopped (SIGTERM): the app takes its cards with it
    assert not (data / APP_FILE).exists() and card_for_url(url) is None


def test_the_cli_works_through_the_running_app(app):
    url, data, mine = app
    card = data / APP_FILE
    assert stat.S_IMODE(card.stat().st_mode) == 0o600  # only the user who started the app can read the secret
    assert read_card(data).url == url

    r = cli(["stats", "--json"], data)
    no_traceback(r)
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 0 and json.loads(r.stdout)["model"] == "aisfx"

    r = cli(["index", str(mine)], data)  # a folder of this machine, indexed in place by the app
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert f"through the app at {url}" in r.stderr and "indexing" in r.stderr  # the progress bar
    assert "added 6, updated 0, unchanged 0, failed 0" in r.stdout and "library now holds 6 sounds" in r.stdout

    with httpx.Client(base_url=url, timeout=120) as c:  # the app's own library has them: searchable by visitors
        assert c.get("/api/stats").json()["count"] == 6
        with (mine / "hedgewars_Hello.ogg").open("rb") as f:
            hits = c.post("/api/search", files={"file": ("q.ogg", f)}, data={"top_k": "3"}).json()["results"]
        assert hits[0]["name"] == "hedgewars_Hello" and hits[0]["score"] > 0.999

    r = cli(["search", str(mine / "hedgewars_Incoming.ogg"), "--top-k", "3", "--json"], data)
    no_traceback(r)
    out = json.loads(r.stdout)  # the CLI's own JSON contract, unchanged
    assert set(out) == {"model", "collection", "query_id", "suggested_label", "results"}
    first = out["results"][0]
    assert set(first) == {"rank", "id", "name", "label", "score", "percentile", "duration", "start", "end", "path"}  # no tags: aisfx
    assert first["name"] == "hedgewars_Incoming" and first["path"] == str((mine / "hedgewars_Incoming.ogg").resolve())
    assert len(out["results"]) == 3

    r = cli(["search", "--id", first["id"], "--top-k", "2"], data)  # text output, more like this
    assert r.returncode == 0 and "hedgewars_Incoming" not in r.stdout.split("\n", 1)[1] and "rank" in r.stdout

    r = cli(["search", str(mine / "missing.wav")], data)
    no_traceback(r)
    assert r.returncode == 1 and r.stderr.strip().startswith("error:") and "missing.wav" in r.stderr

    r = cli(["delete", "--path", str(mine / "hedgewars_splash.ogg")], data)
    assert r.returncode == 0 and r.stdout.strip() == "deleted 1"
    r = cli(["stats"], data)
    assert "count: 5" in r.stdout

    r = cli(["index", str(mine)], data)  # idempotent: the deleted one comes back, the rest are unchanged
    assert "added 1, updated 0, unchanged 5" in r.stdout

    # scan: a recording of this machine, scanned by the app, the CLI's JSON as ever
    rate = 44100
    parts = [np.zeros(2 * rate, np.float32)]
    for name in ("hedgewars_Hello.ogg", "chromium_exploBig.ogg"):
        parts += [librosa.load(mine / name, sr=rate)[0], np.zeros(3 * rate, np.float32)]
    sf.write(mine.parent / "recording.wav", np.concatenate(parts), rate)
    r = cli(["scan", str(mine.parent / "recording.wav"), "--json"], data)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"model", "collection", "recording", "duration", "threshold", "detections", "sounds", "categories"}
    assert out["categories"]["total"] == dict(Counter(s["label"] for s in out["sounds"]))
    found = {d["name"]: d["start"] for d in out["detections"]}
    assert abs(found["hedgewars_Hello"] - 2.0) < 0.1 and "chromium_exploBig" in found

    r = cli(["drop", "--yes"], data)  # would pull the library from under the app: refused, nothing dropped
    no_traceback(r)
    assert r.returncode == 1 and "stop the app first" in r.stderr
    assert json.loads(cli(["stats", "--json"], data).stdout)["count"] == 6


def test_app_named_by_url_from_another_data_folder(app, tmp_path):
    url, data, mine = app
    r = cli(["stats", "--json", "--app", url], tmp_path / "elsewhere")  # its card is found by the URL
    no_traceback(r)
    assert r.returncode == 0 and json.loads(r.stdout)["uri"] == str((data / "soundalike.db").resolve())
    r = cli(["stats", "--app", url], tmp_path / "elsewhere", SOUNDALIKE_APP_SECRET="wrong")
    assert r.returncode == 1 and "secret" in r.stderr and "403" in r.stderr
    no_traceback(r)
    r = cli(["stats", "--app", "http://127.0.0.1:9"], tmp_path / "elsewhere")
    assert r.returncode == 1 and "No app card for http://127.0.0.1:9" in r.stderr
    no_traceback(r)


def test_local_endpoints_refuse_requests_without_the_secret(app):
    url, data, mine = app
    with httpx.Client(base_url=url, timeout=60) as c:
        for headers in ({}, {SECRET_HEADER: "guess"}):
            r = c.post("/api/local/index", json={"paths": ["/etc"]}, headers=headers)
            assert r.status_code == 403 and "secret" in r.json()["detail"]
            assert c.post("/api/local/search", json={"file": "/etc/passwd"}, headers=headers).status_code == 403
            assert c.get("/api/local/stats", headers=headers).status_code == 403
        # the visitor's own index endpoint takes uploads, never a path of the server
        r = c.post("/api/index", data={"paths": "/etc", "path": str(mine)})
        assert r.status_code == 422
        assert "/api/local" not in c.get("/openapi.json").text  # not advertised to visitors


def test_a_second_app_on_the_same_folder_exits_with_a_clear_message(app):
    url, data, mine = app
    e = dict(os.environ, SOUNDALIKE_DATA_DIR=str(data), SOUNDALIKE_MODEL="aisfx", GRADIO_SERVER_PORT="0")
    r = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=e, capture_output=True, text=True, timeout=300)
    no_traceback(r)
    assert r.returncode == 1
    assert "is open in another process" in r.stderr and "SOUNDALIKE_DATA_DIR" in r.stderr
    assert read_card(data).url == url  # the running app's card is left alone


def test_a_library_held_by_a_command_is_a_clear_message(tmp_path):
    """No app to go through (a long `index` holds the file): say so, no traceback."""
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from search_core.library import Library; from search_core.settings import Settings;"
         f"Library(Settings(data_dir=__import__('pathlib').Path({str(data)!r}), model='mfcc')); print('open', flush=True); time.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        for args in (["stats"], ["search", str(SAMPLE_DATA / CLIPS[0]), "--json"], ["index", str(SAMPLE_DATA / CLIPS[0])]):
            r = cli(args, data, SOUNDALIKE_MODEL="mfcc")
            no_traceback(r)
            assert r.returncode == 1 and r.stdout == ""
            lines = r.stderr.strip().splitlines()
            assert lines[0] == f"error: The library {data / 'soundalike.db'} is open in another process (a running Soundalike app, " \
                               "or a command still working on it): Milvus Lite lets one process at a time open a library file."
            assert "wait for it to finish" in lines[1]
    finally:
        holder.kill()
        holder.wait()
    r = cli(["stats", "--json"], data, SOUNDALIKE_MODEL="mfcc")  # free again: the CLI opens it itself
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 0


def test_local_endpoints_answer_only_loopback_with_the_secret(tmp_path):
    service = Service(Settings(data_dir=tmp_path / "data", model="mfcc"))
    api = FastAPI()
    api.include_router(local_router(service))
    ok = {SECRET_HEADER: service.local_secret}
    with TestClient(api, client=("203.0.113.7", 50000)) as remote:  # the right secret from elsewhere: refused
        r = remote.get("/api/local/hello", headers=ok)
        assert r.status_code == 403 and "this machine" in r.json()["detail"]
    with TestClient(api, client=("127.0.0.1", 50000)) as local:
        assert local.get("/api/local/hello", headers={SECRET_HEADER: service.local_secret[:-1]}).status_code == 403
        r = local.get("/api/local/hello", headers=ok)
        assert r.status_code == 200 and r.json()["model"] == "mfcc" and r.json()["pid"] == os.getpid()
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "testclient", None)] == \
        [True, True, True, False, False, False]


def test_a_card_others_can_read_is_not_trusted(tmp_path):
    from search_core.appfile import remove_card, write_card

    settings = Settings(data_dir=tmp_path / "data")
    url = f"http://127.0.0.1:1/{tmp_path.name}"
    path = write_card(settings, url, "s3cret")
    try:
        assert read_card(settings.data_dir).secret == "s3cret" and card_for_url(url).secret == "s3cret"
        path.chmod(0o644)
        assert read_card(settings.data_dir) is None
    finally:
        remove_card(settings.data_dir, url, "s3cret")
    assert card_for_url(url) is None
