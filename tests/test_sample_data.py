import csv
from collections import Counter

import soundfile as sf

from search_core.library import Library

from .conftest import SAMPLE_DATA

ALLOWED_LICENCES = {"GPL-2", "GPL-2+", "GPL-3+", "GFDL-1.3", "CC-BY-3.0", "CC-BY-SA-3.0", "Expat", "public-domain"}


def manifest():
    with (SAMPLE_DATA / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_matches_the_files_and_is_attributed():
    rows = manifest()
    files = {p.relative_to(SAMPLE_DATA).as_posix() for p in SAMPLE_DATA.rglob("*.ogg")}
    assert {r["file"] for r in rows} == files
    assert 150 <= len(rows) <= 300
    counts = Counter(r["label"] for r in rows)
    assert 10 <= len(counts) <= 20 and min(counts.values()) >= 8, counts
    for r in rows:
        assert r["licence"] in ALLOWED_LICENCES and r["author"] and r["source"].startswith("debian:")
        assert r["file"].split("/")[0] == r["label"]
    licences_md = (SAMPLE_DATA / "LICENSES.md").read_text()
    assert all(lic in licences_md for lic in {r["licence"] for r in rows})


def test_clips_are_compact_mono_and_short():
    total = sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file())
    assert total < 25 * 1024 * 1024
    for p in SAMPLE_DATA.rglob("*.ogg"):
        info = sf.info(p)
        assert info.channels == 1 and info.samplerate <= 44100 and info.duration <= 10.05, p


def test_whole_sample_set_indexes_with_zero_failures(sample_settings):
    report = sample_settings.__dict__["_report"]
    assert report.failed == [] and len(report.added) == len(manifest())
    lib = Library(sample_settings)
    stats = lib.stats()
    assert stats["count"] == len(manifest())
    assert stats["labels"] == dict(sorted(Counter(r["label"] for r in manifest()).items()))


def test_a_sample_clip_finds_itself_then_its_category(sample_settings):
    lib = Library(sample_settings)
    query = SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"
    frame = lib.search(query, 5)
    assert frame.iloc[0]["path"] == str(query) and frame.iloc[0]["score"] > 0.999
    assert (frame["label"] == "voice").sum() >= 3  # speech clips cluster (aisfx P@5 on voice ~0.9)
