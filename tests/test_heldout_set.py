"""The held-out category set's builder (benchmarks/heldout.py) on real files: Scorched 3D's effects
(installed with scorched3d-data by scripts/install.sh --dev) and a zip-like archive as OpenArena's
.pk3 files are, decoded by the real ffmpeg into the folder layout `eval --queries` reads."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from benchmarks.heldout import build_heldout, missing_packages, sources

SCORCHED = [r for r in sources() if r["package"] == "scorched3d-data"][:2]


def test_a_missing_package_is_named_with_the_command_that_installs_it(tmp_path):
    rows = [{"label": "gunshot", "package": "nonexistent-game-data", "path": "/nonexistent/pak0.pk3!sound/shot.wav"}]
    assert missing_packages(rows) == ["nonexistent-game-data"]
    with pytest.raises(SystemExit, match="apt-get install nonexistent-game-data"):
        build_heldout(tmp_path / "set", rows)
    assert not (tmp_path / "set").exists()


@pytest.mark.skipif(not SCORCHED or missing_packages(SCORCHED), reason="scorched3d-data is not installed (install.sh --dev)")
def test_sources_from_files_and_from_an_archive_become_labelled_mono_oggs(tmp_path):
    # an archive like OpenArena's pak0.pk3 (a zip), holding a real wav
    archive = tmp_path / "pak0.pk3"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SCORCHED[0]["path"], "sound/world/fire1.wav")
    rows = SCORCHED + [{"label": "fire", "package": "openarena-data", "path": f"{archive}!sound/world/fire1.wav"}]
    out = build_heldout(tmp_path / "set", rows)
    manifest = list(csv.DictReader((out / "manifest.csv").open()))
    assert [m["label"] for m in manifest] == [r["label"] for r in rows]
    assert manifest[-1]["file"] == "fire/openarena_world_fire1.ogg"
    for m in manifest:
        info = sf.info(str(out / m["file"]))
        assert info.format == "OGG" and info.channels == 1 and 0.05 < info.duration <= 10.0
        assert Path(m["file"]).parent.name == m["label"]
