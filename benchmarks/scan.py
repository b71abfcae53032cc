"""Scan benchmark: find the bundled clips inside long recordings (benchmarks/mixes.py builds them).

Every scan is the CLI (`python -m search_core scan REC --json`) in a fresh process, so model load is
included in its time and peak memory (VmHWM). Quality: a detection is right when it names the
inserted clip and starts within 0.5 s of it; recall and precision count exact clips, not labels.
The mixes use seeds the default threshold was not tuned on (tuning used seeds 0-3).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from search_core.scan import DEFAULT_THRESHOLD, implied_onset

from .mixes import build_mix

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
THRESHOLDS = tuple(round(DEFAULT_THRESHOLD + d, 3) for d in (-0.1, -0.05, 0.0, 0.05, 0.1))
TOLERANCE = 0.5  # seconds between a detection's start and the inserted clip's

RUNNER = """
import json, sys
sys.path.insert(0, {repo!r})
from search_core.cli import main
code = main({argv!r})
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(json.dumps({{"peak_mb": round(int(line.split()[1]) / 1024.0)}}), file=sys.stderr)
sys.exit(code)
"""


def run_cli(argv: list[str], env: dict) -> tuple[dict | None, float, float, str]:
    """(stdout JSON, wall seconds, peak MB, stderr) of one CLI run in a fresh process."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", RUNNER.format(repo=str(REPO), argv=argv)], capture_output=True, text=True,
                       env=env, timeout=3600)
    wall = time.perf_counter() - t
    peak = float("nan")
    for line in r.stderr.splitlines():
        if line.startswith('{"peak_mb"'):
            peak = json.loads(line)["peak_mb"]
    out = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
    return out, wall, peak, r.stderr


def twins(folder: Path = SAMPLE, min_score: float = 0.95) -> dict[str, set[str]]:
    """Clips of the library that are the same recording (games that ship the same sound): naming
    either one is naming the inserted clip. Found with the precise stage itself, file against file."""
    from search_core.audio import load_audio
    from search_core.matching import RATE, logmel, make_template, ncc_profile

    from .mixes import sample_clips

    clips = []
    for path, _ in sample_clips(folder):
        y = load_audio(path, RATE).samples
        tpl = make_template(y)
        if tpl is not None:
            clips.append((path.stem, len(y) / RATE, tpl, logmel(np.pad(y, (RATE // 2, RATE // 2)))))
    same: dict[str, set[str]] = {name: {name} for name, *_ in clips}
    for i, (a, da, ta, _) in enumerate(clips):
        for b, db, _, fb in clips[i + 1:]:
            if abs(da - db) > 0.1 * max(da, db) or ta.frames > fb.shape[1]:
                continue
            if float(ncc_profile(ta.feats, fb).max()) >= min_score:
                same[a].add(b)
                same[b].add(a)
    return same


def match_insertions(insertions: list[dict], dets: list[dict], same: dict[str, set[str]]) -> tuple[list[tuple[dict, dict | None, float]], set[int]]:
    """Each insertion with the detection that finds it (or None) and its onset error, and the indexes
    of the detections so used. A detection finds an insertion when it names the inserted clip (or its
    twin) and the library sound's implied onset (start - clip_start / speed: a long sound may be
    matched from a later segment) is within TOLERANCE of it."""
    used: set[int] = set()
    out = []
    for ins in insertions:
        names = same.get(ins["name"], {ins["name"]})
        err = {i: abs(implied_onset(d["start"], d.get("clip_start", 0.0), d.get("speed")) - ins["start"])
               for i, d in enumerate(dets) if i not in used and d["name"] in names}
        hit = [i for i, e in err.items() if e <= TOLERANCE]
        if hit:
            used.add(hit[0])
        out.append((ins, dets[hit[0]] if hit else None, err[hit[0]] if hit else float("nan")))
    return out, used


def score(truths: list[dict], detections: list[list[dict]], threshold: float, same: dict[str, set[str]] | None = None) -> dict:
    """Recall, precision and onset error of detections at `threshold` (match_insertions says what is right)."""
    tp = fp = fn = 0
    errors = []
    for truth, dets in zip(truths, detections):
        dets = [d for d in dets if d["score"] >= threshold]
        matched, used = match_insertions(truth["insertions"], dets, same or {})
        for _, d, err in matched:
            if d is None:
                fn += 1
            else:
                tp += 1
                errors.append(err)
        fp += len(dets) - len(used)
    return {"recall": round(tp / max(1, tp + fn), 3), "precision": round(tp / max(1, tp + fp), 3),
            "median_onset_error_s": round(float(np.median(errors)), 3) if errors else None,
            "found": tp, "false": fp, "missed": fn}


def embedding_only(library, recordings: list[Path], truths: list[dict]) -> dict:
    """The naive baseline: each window's nearest library clip, above a cosine threshold, consecutive
    windows naming the same clip joined; no verification. Best threshold of a sweep (F1)."""
    from search_core.recording import Recording

    emb = library.embedder
    per_rec = []
    for path in recordings:
        rec = Recording(path)
        y = rec.samples(emb.sample_rate)
        spans = emb.spans(rec.duration)
        vecs = emb.embed([y[int(s * emb.sample_rate): int(e * emb.sample_rate)] for s, e in spans])
        top = [rows[0] for rows in library.store.search_rows(vecs, 1)]
        names = {r["id"]: r["name"] for r in library.store.get(list({t.file_id for t in top}))}
        per_rec.append([(s, e, names[t.file_id], t.score) for (s, e), t in zip(spans, top)])
    best = None
    for c in np.arange(0.80, 1.0, 0.01):
        dets_all = []
        for windows in per_rec:
            dets: list[dict] = []
            for s, e, name, cos in windows:
                if cos < c:
                    continue
                if dets and dets[-1]["name"] == name and s <= dets[-1]["end"]:
                    dets[-1]["end"] = e
                    continue
                dets.append({"start": s, "end": e, "name": name, "score": 1.0})
            dets_all.append(dets)
        # a window starts up to one window before the sound: judge by overlap, not onset
        tp = fp = fn = 0
        for truth, dets in zip(truths, dets_all):
            used = set()
            for ins in truth["insertions"]:
                hit = [i for i, d in enumerate(dets) if i not in used and d["name"] == ins["name"] and d["start"] < ins["end"] and d["end"] > ins["start"]]
                if hit:
                    used.add(hit[0])
                    tp += 1
                else:
                    fn += 1
            fp += len(dets) - len(used)
        r, p = tp / max(1, tp + fn), tp / max(1, tp + fp)
        f1 = 2 * r * p / max(1e-9, r + p)
        if best is None or f1 > best["f1"]:
            best = {"cosine": round(float(c), 2), "recall": round(r, 3), "precision": round(p, 3), "f1": f1}
    best.pop("f1")
    return best


def bench_scan(workdir: Path, model: str, env: dict, smoke: bool, long_minutes: tuple[float, ...]) -> dict:
    """Quality and speed of `scan` on mixes of the sample set; long recordings for time and memory."""
    from search_core.library import Library
    from search_core.settings import Settings

    env = {**env, "SOUNDALIKE_DATA_DIR": str(workdir / f"scan_{model}"), "SOUNDALIKE_MODEL": model}
    index, index_s, _, err = run_cli(["index", str(SAMPLE), "--json"], env)
    if index is None:
        raise RuntimeError(f"indexing failed: {err[-500:]}")
    mixes = [(1.0, 4)] if smoke else [(2.5, 15)] * 6
    truths, detections, walls = [], [], []
    recordings = []
    for k, (minutes, clips) in enumerate(mixes):
        path = workdir / f"scan_mix_{100 + k}.ogg"
        truths.append(build_mix(path, minutes, clips, seed=100 + k))
        recordings.append(path)
        out, wall, peak, err = run_cli(["scan", str(path), "--json", "--threshold", str(min(THRESHOLDS))], env)
        if out is None:
            raise RuntimeError(f"scan failed: {err[-500:]}")
        detections.append(out["detections"])
        walls.append(wall / out["duration"])
        print(f"scan {path.name}: {len(out['detections'])} detections, {wall:.1f} s", file=sys.stderr)
    same = twins()
    quality = [{"threshold": t, **score(truths, detections, t, same)} for t in THRESHOLDS]
    result = {
        "model": model, "recordings": len(mixes), "inserted": sum(len(t["insertions"]) for t in truths),
        "minutes_each": mixes[0][0], "quality": quality,
        "real_time_factor_median": round(float(np.median(walls)), 3),
        "twin_groups": sorted({" = ".join(sorted(g)) for g in same.values() if len(g) > 1}),
    }
    lib = Library(Settings(data_dir=workdir / f"scan_{model}", model=model, allow_download=False))
    result["embedding_only"] = embedding_only(lib, recordings, truths)
    from search_core.store import Store

    Store.close_all()
    long_rows = []
    for minutes in long_minutes:
        path = workdir / f"scan_long_{minutes:g}min.ogg"
        truth = build_mix(path, minutes, max(4, int(minutes * 3)), seed=200 + int(minutes))
        out, wall, peak, err = run_cli(["scan", str(path), "--json"], env)
        if out is None:
            raise RuntimeError(f"scan failed: {err[-500:]}")
        s = score([truth], [out["detections"]], 0.0, same)
        long_rows.append({"minutes": minutes, "wall_s": round(wall, 1), "real_time_factor": round(wall / out["duration"], 3),
                          "peak_mb": peak, "inserted": len(truth["insertions"]), "recall": s["recall"], "precision": s["precision"]})
        print(f"scan long {minutes} min: {long_rows[-1]}", file=sys.stderr)
    result["long"] = long_rows
    return result


def scan_tables(result: dict) -> list[tuple[str, list[dict]]]:
    q = [{"threshold": f"{r['threshold']}" + (" (default)" if r["threshold"] == DEFAULT_THRESHOLD else ""), "recall": r["recall"], "precision": r["precision"],
          "median onset error s": r["median_onset_error_s"], "found": r["found"], "false": r["false"], "missed": r["missed"]}
         for r in result["quality"]]
    base = result["embedding_only"]
    q.append({"threshold": f"embedding only (cosine {base['cosine']})", "recall": base["recall"], "precision": base["precision"],
              "median onset error s": "", "found": "", "false": "", "missed": ""})
    title = (f"scan quality ({result['model']}: {result['inserted']} clips in {result['recordings']} recordings of "
             f"{result['minutes_each']:g} min; CLI real-time factor, model load included: {result['real_time_factor_median']})")
    return [(title, q), (f"scan of long recordings ({result['model']}, CLI, model load included)", result["long"])]
