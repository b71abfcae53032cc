"""The REST API through a real HTTP client against `python app.py` on loopback."""
from __future__ import annotations

import io
import re
import shutil
import time
import zipfile

import httpx
import numpy as np
import pytest
import soundfile as sf

from search_core.embedders.openvino_forward import native_bf16

from .apprunner import running_app
from .conftest import SAMPLE_DATA, synth

HELLO = SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"


def wav_bytes(kind="tone", seconds=1.0, seed=0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth(kind, seconds, seed=seed), 22050, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def library_copy(sample_settings, tmp_path_factory):
    def make():
        dest = tmp_path_factory.mktemp("api") / "data"
        shutil.copytree(sample_settings.data_dir, dest)
        return dest

    return make


@pytest.fixture(scope="module")
def api(library_copy):
    """A private (local) run over a copy of the indexed sample set; 1 MB upload limit."""
    with running_app(library_copy(), SOUNDALIKE_MAX_UPLOAD_MB="1") as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            yield client


def wait_job(client, status_url: str) -> dict:
    for _ in range(600):
        job = client.get(status_url).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError("job did not finish")


def test_health_stats_and_openapi(api):
    assert api.get("/api/health").json() == {"status": "ok", "model": "aisfx", "count": 207}
    stats = api.get("/api/stats").json()
    assert stats["count"] == 207 and stats["labels"]["voice"] == 21 and stats["dim"] == 512
    # the default forward pass (auto): OpenVINO bf16 where the CPU has native bfloat16, else ONNX Runtime
    assert stats["inference"] == ("bf16" if native_bf16() else "onnx")
    spec = api.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/search", "/api/audio/{item_id}", "/api/index", "/api/index/sample", "/api/index/{job_id}",
            "/api/stats", "/api/items/{item_id}", "/api/library", "/api/health", "/api/scan", "/api/scan/{job_id}", "/api/find",
            "/api/items/{item_id}/similar", "/api/dupes", "/api/dupes/copies"} <= paths
    assert {"SearchResponse", "SearchHit", "Stats", "JobStatus", "IndexStarted", "Error"} <= set(spec["components"]["schemas"])
    assert api.get("/docs").status_code == 200


def test_search_returns_ranked_json_and_playable_urls(api):
    r = api.post("/api/search", files={"file": ("hello.ogg", HELLO.read_bytes())}, data={"top_k": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "aisfx" and [h["rank"] for h in body["results"]] == [1, 2, 3]
    first = body["results"][0]
    assert first["name"] == "hedgewars_Hello" and first["score"] > 0.999 and first["label"] == "voice"
    audio = api.get(first["audio_url"])
    assert audio.status_code == 200 and audio.content == HELLO.read_bytes()
    assert body["suggested_label"]["label"] == "voice" and body["suggested_label"]["votes"] >= 3
    r = api.post("/api/search", files={"file": ("q.ogg", HELLO.read_bytes())}, data={"top_k": "5", "label": "water", "max_duration": "2"})
    assert {h["label"] for h in r.json()["results"]} == {"water"}
    assert all(h["duration"] <= 2 for h in r.json()["results"])
    assert r.json()["suggested_label"]["label"] == "voice"  # about the sound, not the filtered results


def test_more_like_this_by_id(api):
    first = api.post("/api/search", files={"file": ("hello.ogg", HELLO.read_bytes())}, data={"top_k": "1"}).json()["results"][0]
    r = api.get(f"/api/items/{first['id']}/similar", params={"top_k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [h["rank"] for h in body["results"]] == [1, 2, 3, 4] and first["id"] not in {h["id"] for h in body["results"]}
    assert body["results"][0]["label"] == "voice" and body["suggested_label"]["label"] == "voice"
    assert api.get(body["results"][0]["audio_url"]).status_code == 200
    assert api.get(f"/api/items/{'0' * 64}/similar").status_code == 404
    assert api.get("/api/items/..%2F..%2Fetc/similar").status_code == 404
    assert api.get(f"/api/items/{first['id']}/similar", params={"top_k": 0}).status_code == 422


def test_dupes_of_the_bundle_and_deleting_copies_needs_the_operator(api):
    r = api.get("/api/dupes")
    assert r.status_code == 200, r.text
    body = r.json()
    # the bundled set was curated with this finder: no two of its files are the same recording but
    # one pair kept on purpose, supertux_bigjump being supertux_jump played at 0.94 speed
    assert body["files"] == 207 and 0 < body["threshold"] <= 1
    assert [sorted(it["name"] for it in g["items"]) for g in body["groups"]] == [["supertux_bigjump", "supertux_jump"]]
    assert body["contained"] == []  # nor is any of its files a piece of another
    assert api.get("/api/dupes", params={"threshold": 2}).status_code == 422
    r = api.delete("/api/dupes/copies")
    assert r.status_code == 403 and "SOUNDALIKE_ADMIN" in r.json()["detail"]


@pytest.mark.parametrize(
    "files,data,status,words",
    [
        ({"file": ("e.wav", b"")}, {}, 400, "empty"),
        ({"file": ("t.wav", b"just some text, not audio" * 10)}, {}, 415, "not a readable audio file"),
        ({"file": ("big.wav", b"\0" * (1024 * 1024 + 10))}, {}, 413, "limit"),
        ({"file": ("q.wav", wav_bytes())}, {"top_k": "0"}, 422, ""),
        ({"file": ("q.wav", wav_bytes())}, {"top_k": "many"}, 422, ""),
        ({"file": ("q.wav", wav_bytes())}, {"max_duration": "-1"}, 422, ""),
        ({}, {}, 422, ""),
    ],
)
def test_search_errors_have_the_right_status(api, files, data, status, words):
    r = api.post("/api/search", files=files or None, data=data)
    assert r.status_code == status, r.text
    assert "detail" in r.json() and words in str(r.json()["detail"])
    assert api.get("/api/health").status_code == 200  # still serving


def test_too_long_query_is_400_saying_the_limit(api):
    r = api.post("/api/search", files={"file": ("long.wav", wav_bytes(seconds=31.0))})
    # 31 s of 16-bit 22.05 kHz mono is 1.3 MB: over this app's 1 MB limit first
    assert r.status_code == 413
    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000 * 31, np.float32), 8000, format="FLAC")
    r = api.post("/api/search", files={"file": ("long.flac", buf.getvalue())})
    assert r.status_code == 400 and "the limit is 30 s" in r.json()["detail"]


def test_unknown_ids_are_404(api):
    assert api.get("/api/audio/" + "0" * 64).status_code == 404
    assert api.get("/api/index/nope").status_code == 404
    assert api.get("/api/audio/abc").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/audio/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/audio/%2Fetc%2Fpasswd",
        "/api/audio/....//....//etc/passwd",
        "/api/audio/%2e%2e%2f%2e%2e%2fapp.py",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../etc/passwd",
        "/file=/etc/passwd",
    ],
)
def test_path_traversal_gets_nothing(api, path):
    r = api.get(path)
    assert r.status_code in (400, 403, 404, 405), (path, r.status_code)
    assert b"root:" not in r.content and b"import" not in r.content


def test_database_file_is_never_served(api):
    spec_dir = api.get("/api/stats").json()  # warm
    assert spec_dir
    r = api.get("/gradio_api/file=data/soundalike.db")
    assert r.status_code in (403, 404)


def test_index_uploads_in_background_and_progress(api):
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../../tmp/evil.wav", wav_bytes("chirp", 1.0, seed=3))
        zf.writestr("notes.txt", "no")
    files = [("files", ("new tone.wav", wav_bytes("tone", 1.5, seed=9))), ("files", ("pack.zip", z.getvalue())),
             ("files", ("bad.wav", b"RIFF nope"))]
    r = api.post("/api/index", files=files, data={"label": "api-upload"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2 and [x["file"] for x in body["rejected"]] == ["bad.wav"]
    job = wait_job(api, body["status_url"])
    assert job["state"] == "done" and job["report"]["added"] == 2 and job["done"] == job["total"] == 2
    assert api.get("/api/stats").json()["labels"]["api-upload"] == 2
    r = api.post("/api/index/sample")
    job = wait_job(api, r.json()["status_url"])
    assert job["report"]["unchanged"] == 207 and job["report"]["added"] == 0


def test_destructive_endpoints_refused_without_operator(api):
    assert api.delete("/api/library").status_code == 403
    item = api.post("/api/search", files={"file": ("q.ogg", HELLO.read_bytes())}, data={"top_k": "1"}).json()["results"][0]["id"]
    r = api.delete(f"/api/items/{item}")
    assert r.status_code == 403 and "SOUNDALIKE_ADMIN" in r.json()["detail"]


def test_operator_token_and_public_mode(library_copy):
    with running_app(library_copy(), SOUNDALIKE_ADMIN_TOKEN="t0ken") as url, httpx.Client(base_url=url, timeout=120) as c:
        files = {"files": ("a.wav", wav_bytes("noise", 1.0, seed=4))}
        assert c.post("/api/index", files=files).status_code == 401
        assert c.post("/api/index", files=files, headers={"Authorization": "Bearer nope"}).status_code == 401
        r = c.post("/api/index", files=files, headers={"Authorization": "Bearer t0ken"})
        assert r.status_code == 202
        wait_job(c, r.json()["status_url"])
        item = c.post("/api/search", files={"file": ("q.ogg", HELLO.read_bytes())}, data={"top_k": "1"}).json()["results"][0]["id"]
        assert c.delete(f"/api/items/{item}").status_code == 401
        assert c.delete(f"/api/items/{item}", headers={"Authorization": "Bearer t0ken"}).json() == {"deleted": 1}
        assert c.delete("/api/items/" + "f" * 64, headers={"Authorization": "Bearer t0ken"}).status_code == 404
        assert c.delete("/api/library", headers={"Authorization": "Bearer t0ken"}).json()["deleted"] == 207
        assert c.get("/api/stats").json()["count"] == 0
    with running_app(library_copy(), SOUNDALIKE_PUBLIC="1") as url, httpx.Client(base_url=url, timeout=120) as c:
        r = c.post("/api/index", files={"files": ("a.wav", wav_bytes())})
        assert r.status_code == 403 and "public demo" in r.json()["detail"]
        assert c.delete("/api/library").status_code == 403
        assert c.post("/api/search", files={"file": ("q.ogg", HELLO.read_bytes())}).status_code == 200


def test_model_unavailable_is_503_and_server_keeps_serving(tmp_path):
    with running_app(tmp_path / "data", SOUNDALIKE_MODEL="panns-cnn14", PANNS_URL="http://127.0.0.1:9/none.pth",
                     SOUNDALIKE_DOWNLOAD_TIMEOUT="2") as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/api/search", files={"file": ("q.ogg", HELLO.read_bytes())})
        assert r.status_code == 503 and "SOUNDALIKE_MODEL=aisfx" in r.json()["detail"]
        assert c.get("/api/health").status_code == 503
        assert c.get("/").status_code == 200  # the UI still loads and explains


def test_gradio_client_calls_search(api):
    from gradio_client import Client, handle_file

    client = Client(str(api.base_url), verbose=False)
    out = client.predict(handle_file(str(HELLO)), 3, "(any category)", None, api_name="/search")
    status, table = out[0], out[1]
    assert re.fullmatch(r"Top 3 of 20\d sounds · \*\*Sounds like: voice — \d of 5 neighbours\*\*", status), status
    assert table["value"]["data"][0][1] == "hedgewars_Hello"


def test_scan_runs_as_a_job_and_reports_detections_with_playable_clips(api, tmp_path):
    from benchmarks.mixes import build_mix

    mix = tmp_path / "mix.ogg"
    truth = build_mix(mix, minutes=0.6, clips=3, seed=5)
    r = api.post("/api/scan", files={"file": ("my gameplay.ogg", mix.read_bytes(), "audio/ogg")})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["duration"] == pytest.approx(36.0, abs=0.05)
    job = None
    for _ in range(600):
        job = api.get(started["status_url"]).json()
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["state"] == "done", job
    assert job["total"] == pytest.approx(36.0, abs=0.05) and job["done"] == job["total"]
    result = job["result"]
    assert result["recording"] == "my gameplay.ogg" and result["model"] == "aisfx"
    assert [d["name"] for d in result["detections"]] == [i["name"] for i in truth["insertions"]]
    for d, ins in zip(result["detections"], truth["insertions"]):
        assert abs(d["start"] - ins["start"]) < 0.3
        assert api.get(d["audio_url"]).status_code == 200


def test_scan_and_find_refuse_bad_input_clearly(api, tmp_path):
    r = api.post("/api/scan", files={"file": ("notes.ogg", b"this is not audio" * 50, "audio/ogg")})
    assert r.status_code == 415 and "notes.ogg" in r.json()["detail"]
    r = api.post("/api/scan", files={"file": ("blip.wav", wav_bytes("tone", 1.0), "audio/wav")})
    assert r.status_code == 400 and "one analysis window" in r.json()["detail"]
    r = api.post("/api/scan", files={"file": ("x.wav", wav_bytes("tone", 3.0), "audio/wav")}, data={"threshold": "2"})
    assert r.status_code == 422
    assert api.get("/api/scan/" + "0" * 32).status_code == 404
    silent = io.BytesIO()
    sf.write(silent, np.zeros(22050 * 5, np.float32), 22050, format="WAV")
    r = api.post("/api/find", files={"query": ("q.ogg", HELLO.read_bytes(), "audio/ogg"), "recording": ("rec.wav", silent.getvalue(), "audio/wav")})
    assert r.status_code == 400 and "silent" in r.json()["detail"]


def test_find_locates_a_sound_in_a_recording(api, tmp_path):
    from benchmarks.mixes import build_mix

    mix = tmp_path / "mix.ogg"
    truth = build_mix(mix, minutes=0.5, clips=2, seed=9)
    target = truth["insertions"][1]
    r = api.post("/api/find", files={"query": ("q.ogg", (SAMPLE_DATA / target["file"]).read_bytes(), "audio/ogg"),
                                      "recording": ("mix.ogg", mix.read_bytes(), "audio/ogg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "q.ogg" and len(body["matches"]) == 1
    assert abs(body["matches"][0]["start"] - target["start"]) < 0.3
