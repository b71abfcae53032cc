"""Wild benchmark: `scan` on recordings of the wild (benchmarks/wild_mixes.py builds them).

The library is one part of the bundled set (LIBRARY_GAMES); the recordings hold those sounds under
one alteration each, over game music, between as many sounds of the other games (not in the
library: a detection there is a false alarm). Every scan is the CLI in a fresh process (model load
included). The threshold is chosen on the tuning seeds; the figures are from the report seeds,
which it never saw. A detection is right when it names the inserted sound (or the same recording
shipped by another game) and the library sound's implied onset is within 0.5 s of the insertion.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .scan import match_insertions, run_cli, twins
from .wild_mixes import CONDITIONS, build_wild_mix, split

TUNE_SEEDS = tuple(range(12))  # an hour, as the report: tuning counts false alarms per hour too
REPORT_SEEDS = tuple(range(100, 112))  # 12 x 5 min: an hour, so that false alarms per hour is a count
MINUTES = 5.0


def warped_twins(folder=None, min_score: float = 0.9) -> dict[str, set[str]]:
    """Library clips that are one recording at another speed or pitch (SuperTux ships its jump
    pitched as `bigjump`): each one's template scores `min_score` or more on the other, both ways,
    with the warped verifier. Naming either is naming the inserted clip, at any speed or pitch."""
    from search_core.audio import load_audio
    from search_core.verifiers import RATE, WarpedVerifier

    from .mixes import sample_clips
    from .scan import SAMPLE

    v = WarpedVerifier()
    clips = [(p.stem, label, load_audio(p, RATE).samples) for p, label in sample_clips(folder or SAMPLE)]
    best: dict[tuple[str, str], float] = {}
    for a, la, ya in clips:
        ta = v.make_template(ya)
        if ta is None:
            continue
        for b, lb, yb in clips:
            if b == a or lb != la:  # a recording shipped twice keeps its category
                continue
            f = v.features(np.pad(yb, (RATE // 2, RATE // 2)))
            if v.frames(f) - ta.frames >= 0:
                best[(a, b)] = max((h.score for h in v.hits(ta, f, 0, v.frames(f) - ta.frames, 0.0)), default=0.0)
    same: dict[str, set[str]] = {}
    for (a, b), s in best.items():
        if s >= min_score and best.get((b, a), 0.0) >= min_score:
            same.setdefault(a, {a}).add(b)
    return same


def score_wild(truths: list[dict], detections: list[list[dict]], threshold: float, same: dict[str, set[str]]) -> dict:
    """Recall per condition and overall, precision, false detections per hour, onset error."""
    per: dict[str, list[int]] = {c: [0, 0] for c in CONDITIONS}
    false = 0
    errors: list[float] = []
    speed_err: list[float] = []
    on_distractor = 0
    for truth, dets in zip(truths, detections):
        dets = [d for d in dets if d["score"] >= threshold]
        matched, used = match_insertions(truth["insertions"], dets, same)
        for ins, d, err in matched:
            per[ins["condition"]][1] += 1
            if d is not None:
                per[ins["condition"]][0] += 1
                errors.append(err)
                if "speed" in ins and d.get("speed"):
                    speed_err.append(abs(d["speed"] - ins["speed"]))
        wrong = [d for i, d in enumerate(dets) if i not in used]
        false += len(wrong)
        on_distractor += sum(1 for d in wrong if any(x["start"] - 0.5 <= d["start"] <= x["end"] for x in truth["distractors"]))
    found = sum(v[0] for v in per.values())
    total = sum(v[1] for v in per.values())
    hours = sum(t["duration"] for t in truths) / 3600.0
    return {
        "threshold": threshold, "recall": round(found / max(1, total), 3),
        "precision": round(found / max(1, found + false), 3),
        "false_per_hour": round(false / hours, 1), "false": false, "false_on_distractors": on_distractor,
        "found": found, "inserted": total,
        "recall_by_condition": {c: round(v[0] / v[1], 3) if v[1] else None for c, v in per.items()},
        "counts_by_condition": {c: f"{v[0]}/{v[1]}" for c, v in per.items()},
        "median_onset_error_s": round(float(np.median(errors)), 3) if errors else None,
        "median_speed_error": round(float(np.median(speed_err)), 4) if speed_err else None,
    }


def bench_wild(workdir: Path, model: str, env: dict, smoke: bool, thresholds: tuple[float, ...] | None = None) -> dict:
    """Index the library part, scan the tuning and report recordings, score both."""
    from search_core.scan import DEFAULT_THRESHOLD
    from search_core.settings import Settings

    env = {**env, "SOUNDALIKE_DATA_DIR": str(workdir / f"wild_{model}"), "SOUNDALIKE_MODEL": model}
    library, distractors = split()
    index, _, _, err = run_cli(["index", *[str(p) for p, _ in library], "--json"], env)
    if index is None:
        raise RuntimeError(f"indexing failed: {err[-500:]}")
    thresholds = thresholds or tuple(sorted({round(DEFAULT_THRESHOLD + d, 3) for d in (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1)}))
    floor = min(thresholds)
    runs: dict[str, tuple[list, list, list]] = {}
    for part, seeds in (("tune", TUNE_SEEDS[:1] if smoke else TUNE_SEEDS), ("report", REPORT_SEEDS[:1] if smoke else REPORT_SEEDS)):
        truths, dets, rtf = [], [], []
        for seed in seeds:
            path = workdir / f"wild_{seed}.ogg"
            truths.append(build_wild_mix(path, 1.0 if smoke else MINUTES, seed))
            out, wall, peak, err = run_cli(["scan", str(path), "--json", "--threshold", str(floor)], env)
            if out is None:
                raise RuntimeError(f"scan failed: {err[-500:]}")
            dets.append(out["detections"])
            path.with_suffix(".scan.json").write_text(json.dumps(out))  # beside the truth, to study misses and false alarms
            rtf.append(wall / out["duration"])
            print(f"wild scan {path.name}: {len(out['detections'])} detections, {wall:.1f} s", file=sys.stderr)
        runs[part] = (truths, dets, rtf)
    same = twins()
    for name, others in warped_twins().items():
        same[name] = same.get(name, {name}) | others
    result = {"model": model, "library": len(library), "distractor_pool": len(distractors),
              "bed": runs["report"][0][0]["bed"], "minutes_each": 1.0 if smoke else MINUTES,
              "default_threshold": DEFAULT_THRESHOLD, "verifier": env.get("SOUNDALIKE_VERIFIER") or Settings().verifier}
    for part, (truths, dets, rtf) in runs.items():
        result[part] = {"seeds": [t["seed"] for t in truths], "recordings": len(truths),
                        "hours": round(sum(t["duration"] for t in truths) / 3600.0, 3),
                        "real_time_factor_median": round(float(np.median(rtf)), 3),
                        "quality": [score_wild(truths, dets, t, same) for t in thresholds]}
    return result


def wild_tables(result: dict) -> list[tuple[str, list[dict]]]:
    tables = []
    for part in ("tune", "report"):
        r = result[part]
        rows = []
        for q in r["quality"]:
            row = {"threshold": f"{q['threshold']}" + (" (default)" if q["threshold"] == result["default_threshold"] else ""),
                   "recall": q["recall"], "precision": q["precision"], "false/hour": q["false_per_hour"],
                   "onset err s": q["median_onset_error_s"]}
            row.update({c: q["counts_by_condition"][c] for c in CONDITIONS})
            rows.append(row)
        tables.append((f"wild scan, {part} seeds {r['seeds'][0]}-{r['seeds'][-1]} ({result['model']}: {r['recordings']} x "
                       f"{result['minutes_each']:g} min over {result['bed'].split(' (')[0]}, library {result['library']} sounds, "
                       f"distractors from {result['distractor_pool']} others; CLI real-time factor, model load included: "
                       f"{r['real_time_factor_median']})", rows))
    return tables
