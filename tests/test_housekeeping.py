"""Bounded life of visitor files and jobs; silent and non-finite audio refused with a message.

Ages are simulated by sweeping at a later `now` (a file's age counts from its ctime, which no
test can set in the past), never by sleeping.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from search_core.audio import AudioError, load_audio, prepare, require_sound
from search_core.service import Service
from search_core.settings import Settings
from search_core.sweeper import Sweeper

from .apprunner import running_app
from .conftest import REPO, SAMPLE_DATA, synth

HELLO = SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"


def put(path: Path, size: int = 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def swept(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model="aisfx", allow_download=False, temp_dir=tmp_path / "work",
                    cache_max_age=600, cache_max_mb=1, media_dirs=(tmp_path / "media",))


def test_sweep_removes_old_visitor_files_and_keeps_library_files(swept, tmp_path):
    service = Service(swept)
    upload = put(service.files.gradio_dir / ("a" * 64) / "visitor.wav")
    player_copy = put(service.files.gradio_dir / ("b" * 64) / "wesnoth_button.ogg")
    excerpt = put(service.files.excerpt_dir / "cut.wav")
    request = put(service.files.request_dir() / "q-x" / "upload-0")
    in_use = put(service.files.gradio_dir / ("c" * 64) / "being-searched.wav")
    library = [put(swept.upload_dir / "abc.wav"), put(tmp_path / "media" / "mine.wav"), put(Path(swept.data_dir) / "other.bin")]
    now = time.time()

    assert service.files.housekeep(now).removed_files == 0  # young files stay
    with service.files.in_use(in_use):
        report = service.files.housekeep(now + 601)  # ten minutes later
    assert report.removed_files == 4 and report.kept_files == 1
    assert not any(p.exists() for p in (upload, player_copy, excerpt, request))
    assert in_use.exists()  # spared while in use
    assert not (service.files.gradio_dir / ("b" * 64)).exists()  # and the emptied folders went too
    assert all(p.exists() for p in library)
    assert service.files.housekeep(now + 601).removed_files == 1  # no longer in use: swept


def test_sweep_bounds_the_total_oldest_first_but_spares_fresh_files(tmp_path):
    folder = tmp_path / "cache"
    files = [put(folder / f"{i}.bin", 400_000) for i in range(4)]  # 1.6 MB, oldest first
    sweeper = Sweeper([folder], max_age=3600, max_bytes=1_000_000, grace=30)
    created = max(f.stat().st_ctime for f in files)
    assert sweeper.sweep(created + 1).removed_files == 0  # over the bound, but all inside the grace period
    report = sweeper.sweep(created + 31)
    assert report.removed_files == 2 and report.kept_bytes == 800_000
    assert [f.exists() for f in files] == [False, False, True, True]


def test_sweeper_refuses_folders_that_overlap_the_library(tmp_path):
    with pytest.raises(ValueError, match="library folder"):
        Sweeper([tmp_path / "data" / "tmp"], max_age=1, max_bytes=1, never=[tmp_path / "data"])
    with pytest.raises(ValueError, match="library folder"):
        Sweeper([tmp_path], max_age=1, max_bytes=1, never=[tmp_path / "data" / "uploads"])
    settings = Settings(data_dir=tmp_path / "data", temp_dir=tmp_path / "data" / "cache")
    with pytest.raises(ValueError):
        Service(settings).files.sweeper


def test_a_finished_job_is_forgotten_after_the_retention(swept):
    from fastapi.testclient import TestClient

    from search_core.api import create_api

    service = Service(swept.with_(job_retention=60))
    job = service.jobs.start(lambda progress: {"added": 0})
    for _ in range(200):
        if job.state == "done":
            break
        time.sleep(0.05)
    with TestClient(create_api(service)) as client:
        assert client.get(f"/api/index/{job.id}").json()["state"] == "done"
        job.finished -= 61  # as if it had ended a minute ago
        r = client.get(f"/api/index/{job.id}")
    assert r.status_code == 404 and "forgotten" in r.json()["detail"]
    assert job.id not in service.jobs


# -- silent and non-finite audio -----------------------------------------------------------------------
def wav(tmp_path: Path, name: str, samples: np.ndarray, subtype: str = "FLOAT") -> Path:
    path = tmp_path / name
    sf.write(path, samples, 22050, subtype=subtype)
    return path


def test_silent_and_nan_clips_are_refused_with_a_reason(tmp_path):
    silent = wav(tmp_path, "silent.wav", np.zeros(44100, np.float32), "PCM_16")
    nan = wav(tmp_path, "nan.wav", np.full(44100, np.nan, np.float32))
    with pytest.raises(AudioError, match="is silent"):
        require_sound(load_audio(silent, 16000))
    with pytest.raises(AudioError, match="no valid samples"):
        load_audio(nan, 16000)
    quiet = 10 ** (-70 / 20) * synth("tone", 1.0)  # quiet, but a sound
    assert require_sound(prepare(quiet, 22050, 16000)).duration == 1.0


def test_silent_query_gets_the_message_in_the_app_and_the_cli(sample_settings, tmp_path):
    import gradio as gr

    from search_core.ui import Handlers

    silent = wav(tmp_path, "silent.wav", np.zeros(44100, np.float32), "PCM_16")
    with pytest.raises(gr.Error, match="silent.wav: is silent"):
        Handlers(Service(sample_settings)).search_tab.search(str(silent), 5, None, None)
    from search_core.store import Store

    Store.close_all()  # the CLI opens the same Lite file in its own process
    env = {**os.environ, "SOUNDALIKE_DATA_DIR": str(sample_settings.data_dir), "SOUNDALIKE_MODEL": "aisfx"}
    r = subprocess.run([sys.executable, "-m", "search_core", "search", str(silent), "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "silent.wav: is silent" in r.stderr and "Traceback" not in r.stderr


def test_silent_uploads_are_rejected_not_indexed(swept, tmp_path):
    silent = wav(tmp_path, "silence.wav", np.zeros(22050, np.float32), "PCM_16")
    service = Service(swept)
    uploads, rejected = service.uploads.ingest([("silence.wav", silent), ("hello.ogg", HELLO)])
    assert [u.name for u in uploads] == ["hello"]
    assert [name for name, _ in rejected] == ["silence.wav"] and rejected[0][1].startswith("is silent")
    report = service.library.index([silent])  # a folder indexed by the CLI: reported as failed, nothing stored
    assert [(name, reason.startswith("is silent")) for name, reason in report.failed] == [("silence.wav", True)]
    assert service.library.count() == 0


# -- the running app -----------------------------------------------------------------------------------
def test_the_app_keeps_its_visitor_files_in_its_swept_folder(tmp_path):
    """Gradio's uploads and player copies land under SOUNDALIKE_TEMP_DIR and are swept there; a
    silent upload is a 400 in the REST API."""
    from gradio_client import Client, handle_file

    data, work = tmp_path / "data", tmp_path / "work"
    env = dict(SOUNDALIKE_TEMP_DIR=str(work), SOUNDALIKE_CACHE_MAX_AGE="3", SOUNDALIKE_SWEEP_INTERVAL="0.5")
    with running_app(data, **env) as url, httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("/api/index", files=[("files", ("hello.ogg", HELLO.read_bytes(), "audio/ogg"))])
        assert r.status_code == 202, r.text
        for _ in range(240):
            if http.get(r.json()["status_url"]).json()["state"] == "done":
                break
            time.sleep(0.5)
        buf = io.BytesIO()
        sf.write(buf, np.zeros(22050, np.float32), 22050, format="WAV")
        silent = http.post("/api/search", files={"file": ("quiet.wav", buf.getvalue(), "audio/wav")})
        assert silent.status_code == 400 and "quiet.wav: is silent" in silent.json()["detail"]

        query = tmp_path / "visitor query.wav"
        sf.write(query, synth("chirp", 1.0), 22050)
        out = Client(url, verbose=False).predict(handle_file(str(query)), 1, "(any category)", None, api_name="/search")
        assert str(out[0]).startswith("Top 1")
        uploaded = list((work / "gradio").rglob("visitor query.wav"))
        assert uploaded, sorted(p.name for p in work.rglob("*"))
        for _ in range(60):  # swept once older than 3 s (the housekeeper wakes every 0.5 s)
            if not any(p.exists() for p in uploaded):
                break
            time.sleep(0.5)
        assert not any(p.exists() for p in uploaded)
        assert len(list((data / "uploads").iterdir())) == 1  # the operator's upload stays in the library
        assert http.get("/api/stats").json()["count"] == 1
