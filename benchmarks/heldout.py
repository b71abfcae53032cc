"""Category suggestion on sounds from other games: the "sounds like" layer's held-out set.

`heldout_sources.csv` names 126 sound effects of games packaged in Debian that the bundled library
does not draw from (OpenArena, Teeworlds, Extreme Tux Racer, and Scorched 3D's effects: its music is
the wild benchmark's bed, its effects are used nowhere else), each labelled with one of the bundled
set's categories by its file name and role in its game, chosen before any was measured. Nothing of
them is redistributed: the set is built on this machine from the installed packages.

The library (sample_data/, 207 sounds) is indexed; each held-out sound is searched in it, and its
category is suggested by the neighbour vote and by the classifier fitted on the library alone
(`python -m search_core eval sample_data --queries FOLDER`). Accuracy is reported overall and by
source game, so a change can be tuned on some games and reported on the others. The held-out folder
is also evaluated on its own, leave-one-out (`eval FOLDER`, the protocol of the bundled set's table),
where each sound's category is learnt from the other sounds of its own games.

    python -m benchmarks.heldout OUT_DIR     # only build the folder (label/file.ogg + manifest.csv)
"""
from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .common import REPO, SAMPLE

SOURCES = REPO / "benchmarks" / "heldout_sources.csv"
MAX_SECONDS = 10.0  # as the bundled set: mono OGG, at most 10 s


def sources() -> list[dict]:
    with SOURCES.open(newline="") as f:
        return list(csv.DictReader(f))


def missing_packages(rows: list[dict]) -> list[str]:
    """Packages whose files are not on this machine (apt-get install them to build the set)."""
    return sorted({r["package"] for r in rows if not Path(r["path"].split("!")[0]).exists()})


def _name(row: dict) -> str:
    game = row["package"].split("-")[0]
    parts = Path(row["path"].split("!")[-1]).with_suffix("").parts
    stem = "_".join(parts[-2:]) if game in ("openarena", "scorched3d") else parts[-1]  # their folders say what it is
    return f"{game}_{stem}".replace(" ", "_")


def build_heldout(out: Path, rows: list[dict] | None = None) -> Path:
    """Decode every source (default: heldout_sources.csv) with ffmpeg (Teeworlds ships WavPack)
    into out/label/name.ogg, with a manifest.csv."""
    from search_core.monitor.sources import ffmpeg_exe

    rows = sources() if rows is None else rows
    missing = missing_packages(rows)
    if missing:
        raise SystemExit(f"the held-out set needs Debian packages that are not installed: apt-get install {' '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            archive, _, member = row["path"].partition("!")
            src = Path(archive)
            if member:  # inside a zip-like .pk3
                src = Path(tmp) / Path(member).name
                src.write_bytes(zipfile.ZipFile(archive).read(member))
            rel = f"{row['label']}/{_name(row)}.ogg"
            (out / row["label"]).mkdir(exist_ok=True)
            subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-ac", "1", "-ar", "44100",
                            "-t", str(MAX_SECONDS), "-c:a", "libvorbis", "-q:a", "5", str(out / rel)], check=True)
            manifest.append({"file": rel, "label": row["label"], "source": f"debian:{row['package']}:{row['path'].lstrip('/')}"})
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "label", "source"])
        writer.writeheader()
        writer.writerows(manifest)
    return out


def bench_heldout(work: Path, models: list[str]) -> dict:
    from search_core.evaluate import evaluate_models
    from search_core.settings import Settings

    folder = build_heldout(work / "heldout")
    game = {_name(r): r["package"].split("-")[0] for r in sources()}
    models = [m for m in models if m != "panns-cnn14"]  # random weights here: its categories mean nothing
    result = evaluate_models(SAMPLE, Settings.from_env(), models=models, queries=folder)
    within = evaluate_models(folder, Settings.from_env(), models=models)
    rows = []
    for model, r in result["models"].items():
        by_game: dict[str, list] = {}
        for p in r["predictions"]:
            by_game.setdefault(game.get(p["name"], "?"), []).append(p)
        row = {"model": model, "protocol": "library -> held-out", "clips": r["clips"], "library": r["library_clips"], "p@1": r["overall"]["p@1"],
               "p@5": r["overall"]["p@5"], "vote": r["knn_accuracy"], "classifier": r["classifier_accuracy"]}
        for g, preds in sorted(by_game.items()):
            row[f"classifier {g} ({len(preds)})"] = round(sum(p["classifier"] == p["label"] for p in preds) / len(preds), 3)
            row[f"vote {g}"] = round(sum(p["vote"] == p["label"] for p in preds) / len(preds), 3)
        rows.append(row)
    for model, r in within["models"].items():  # the held-out folder on its own, leave-one-out (`eval FOLDER`)
        rows.append({"model": model, "protocol": "leave-one-out within held-out", "clips": r["clips"], "library": r["clips"] - 1,
                     "p@1": r["overall"]["p@1"], "p@5": r["overall"]["p@5"], "vote": r["knn_accuracy"],
                     "classifier": r["classifier_accuracy"]})
    return {"rows": rows, "details": result, "within": within}


def heldout_tables(result: dict) -> list[tuple[str, list[dict]]]:
    return [("heldout: category suggestion on other games' sounds, learnt from the library", result["rows"])]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print(build_heldout(Path(argv[0] if argv else "heldout")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
