"""Moments: segments of long files, `scan` and `find`, on real audio, the real aisfx model and a real
Milvus Lite file (the bundled set, indexed once per session)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from benchmarks.mixes import build_mix, write_ogg
from search_core.audio import AudioError, load_audio
from search_core.library import Library
from search_core.matching import RATE, logmel, make_template, ncc_profile
from search_core.find import find
from search_core.scan import DEFAULT_THRESHOLD, Scanner

from .conftest import SAMPLE_DATA


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    path = tmp_path_factory.mktemp("mix") / "mix.ogg"
    truth = build_mix(path, minutes=1.0, clips=5, seed=11)
    return path, truth


def test_scan_finds_the_inserted_clips_at_their_times_and_nothing_else(sample_settings, mix):
    path, truth = mix
    seen = []
    result = Scanner(Library(sample_settings)).scan(path, progress=lambda done, total: seen.append((done, total)))
    found = [(d.name, d.start) for d in result.detections]
    expected = [(i["name"], i["start"]) for i in truth["insertions"]]
    assert [n for n, _ in found] == [n for n, _ in expected], (found, expected)
    assert all(abs(a - b) <= 0.3 for (_, a), (_, b) in zip(found, expected))
    assert all(DEFAULT_THRESHOLD <= d.score <= 1.0 and d.end > d.start for d in result.detections)
    assert seen and seen[-1][0] == pytest.approx(result.duration)
    out = result.as_dict("aisfx", "c")
    assert set(out) >= {"model", "collection", "recording", "duration", "detections"}
    assert set(out["detections"][0]) >= {"start", "end", "score", "id", "name", "label", "path"}


def test_a_higher_threshold_keeps_fewer_and_a_bad_one_is_refused(sample_settings, mix):
    scanner = Scanner(Library(sample_settings))
    strict = scanner.scan(mix[0], threshold=0.999)
    assert len(strict.detections) < len(mix[1]["insertions"])
    with pytest.raises(ValueError, match="threshold"):
        scanner.scan(mix[0], threshold=1.5)


def test_find_returns_every_occurrence_of_a_clip_inserted_twice(tmp_path, settings):
    clip = load_audio(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg", 44100).samples
    other = load_audio(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg", 44100).samples
    rng = np.random.default_rng(3)
    y = (0.003 * rng.normal(size=44100 * 20)).astype(np.float32)
    for at, piece in ((2.0, clip), (9.5, other), (14.25, clip * 0.5)):
        a = int(at * 44100)
        y[a : a + len(piece)] += piece
    rec = tmp_path / "rec.ogg"
    write_ogg(rec, y)
    result = find(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg", rec, settings)
    assert [round(m.start, 1) for m in result.matches] == [2.0, 14.2] or [round(m.start, 1) for m in result.matches] == [2.0, 14.3]
    assert all(m.score >= DEFAULT_THRESHOLD for m in result.matches)
    assert set(result.as_dict()) >= {"query", "recording", "matches"}
    with pytest.raises(AudioError, match="longer than the recording"):
        find(rec, SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg", settings.with_(max_query_seconds=60))


def test_bad_recordings_get_clear_messages(tmp_path, sample_settings):
    scanner = Scanner(Library(sample_settings))
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(22050, np.float32) + 0.1, 22050)
    with pytest.raises(AudioError, match=r"at least 2.4 s \(one analysis window\)"):
        scanner.scan(short)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(44100 * 10, np.float32), 44100)
    with pytest.raises(AudioError, match="is silent"):
        scanner.scan(silent)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all " * 100)
    with pytest.raises(AudioError, match="not a readable audio file"):
        scanner.scan(text)
    long = tmp_path / "long.wav"
    sf.write(long, (0.1 * np.random.default_rng(0).normal(size=8000 * 120)).astype(np.float32), 8000)
    limited = Scanner(Library(sample_settings.with_(max_scan_seconds=60)))
    with pytest.raises(AudioError, match=r"2.0 min long; the limit for a recording is 1 min"):
        limited.scan(long)
    with pytest.raises(AudioError, match="is silent"):
        find(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg", silent, sample_settings)


def test_long_files_are_stored_as_segments_idempotently_and_deleted_whole(tmp_path, settings):
    parts = [load_audio(p, 44100).samples for p in (SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg",
                                                     SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg",
                                                     SAMPLE_DATA / "water" / "hedgewars_splash.ogg")]
    gap = np.zeros(44100, np.float32)
    long = np.concatenate([parts[0], gap, parts[1], gap, parts[2], gap])
    folder = tmp_path / "lib" / "long"
    folder.mkdir(parents=True)
    sf.write(folder / "long.wav", long, 44100)
    sf.write(folder / "short.wav", parts[1][:44100], 44100)
    lib = Library(settings)
    lib.index([tmp_path / "lib"])
    duration = len(long) / 44100
    assert lib.count() == 2
    segs = lib.store.count_segments()
    assert segs == 1 + len(lib.embedder.spans(duration)) and segs > 3
    lib.index([tmp_path / "lib"])  # unchanged: nothing added, nothing duplicated
    assert lib.store.count_segments() == segs
    # a query of the long file's last sound: the hit is the long file, at the segment holding it
    frame = lib.search(SAMPLE_DATA / "water" / "hedgewars_splash.ogg", 2)
    top = frame.iloc[0]
    splash_at = (len(parts[0]) + len(parts[1]) + 2 * 44100) / 44100
    assert top["name"] == "long" and top["start"] <= splash_at + 0.5 and top["end"] >= splash_at
    # the file changes: all its old segments go with the old version
    sf.write(folder / "long.wav", long[: 44100 * 5], 44100)
    report = lib.index([tmp_path / "lib"])
    assert len(report.updated) == 1
    assert lib.store.count_segments() == 1 + len(lib.embedder.spans(5.0))
    assert lib.delete(path=str((folder / "long.wav").resolve())) == 1
    assert lib.store.count_segments() == 1 and lib.count() == 1


def test_correlation_stage_aligns_a_template_to_the_frame():
    clip = load_audio(SAMPLE_DATA / "explosion" / "chromium_exploStd.ogg", RATE).samples
    noise = (0.01 * np.random.default_rng(1).normal(size=RATE * 6)).astype(np.float32)
    at = 2.5
    noise[int(at * RATE) : int(at * RATE) + len(clip)] += clip * 0.5  # -6 dB: a gain is an offset in dB
    tpl = make_template(clip)
    profile = ncc_profile(tpl.feats, logmel(noise))
    onset = np.argmax(profile) * 256 / RATE - tpl.lead
    assert abs(onset - at) < 0.03 and profile.max() >= DEFAULT_THRESHOLD
    assert make_template(np.zeros(RATE, np.float32)) is None


def test_cli_scan_and_find_print_one_json_object(tmp_path, mix):
    import os
    import subprocess
    import sys

    from .conftest import REPO

    path, truth = mix
    lib_dir = tmp_path / "clips"
    lib_dir.mkdir()
    for ins in truth["insertions"][:2]:
        (lib_dir / ins["label"]).mkdir(exist_ok=True)
        (lib_dir / ins["label"] / f"{ins['name']}.ogg").write_bytes((SAMPLE_DATA / ins["file"]).read_bytes())
    env = {**os.environ, "SOUNDALIKE_DATA_DIR": str(tmp_path / "data"), "SOUNDALIKE_MODEL": "aisfx"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "search_core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    assert cli("index", str(lib_dir)).returncode == 0
    r = cli("scan", str(path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {d["name"] for d in out["detections"]} == {i["name"] for i in truth["insertions"][:2]}
    assert out["model"] == "aisfx" and out["duration"] == pytest.approx(60.0, abs=0.05)
    r = cli("find", str(SAMPLE_DATA / truth["insertions"][0]["file"]), "--in", str(path), "--json")
    assert r.returncode == 0, r.stderr
    matches = json.loads(r.stdout)["matches"]
    assert len(matches) == 1 and abs(matches[0]["start"] - truth["insertions"][0]["start"]) < 0.3
    r = cli("scan", str(tmp_path / "missing.ogg"))
    assert r.returncode == 1 and r.stderr.strip().endswith("file not found") and "Traceback" not in r.stderr
