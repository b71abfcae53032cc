"""Soak: a stream of visitors on the real app, to show that its disk and memory stay bounded.

The app (`python app.py`, its own process) indexes the bundled set, then serves N searches
(default 1,000), each with a distinct uploaded 2-second clip (a bundled clip with its own gain and
noise), half through the REST API and half through the Gradio API as the browser calls it (upload,
then the queued `/search` event, whose results Gradio copies for the players), from a few clients
at once. At the start, every 200 searches and at the end (after one idle sweep interval), it
records the bytes under the app's visitor-file folder (Gradio's upload cache, player copies,
excerpts, REST request files) and the app's RSS.

Pass: every search answered 200, the folder at the end is within the configured bound, and RSS at
the end is within 10 % of RSS after the first 200 searches. The bound is set small here (20 MB)
so that 1,000 searches (~180 MB of uploads and copies) must be swept to stay under it.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import SAMPLE
from .running import app_process, rss_mb

RATE = 22050
RSS_TOLERANCE = 0.10


def folder_mb(folder: Path) -> tuple[float, int]:
    """(MB, files) of everything under a folder."""
    total, files = 0, 0
    for dirpath, _, names in os.walk(folder):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
                files += 1
            except OSError:
                pass
    return total / 2**20, files


def source_clips(n: int = 40) -> list[np.ndarray]:
    import librosa

    files = sorted(p for p in SAMPLE.rglob("*.ogg"))[:: max(1, len(list(SAMPLE.rglob("*.ogg"))) // n)][:n]
    clips = []
    for f in files:
        y, _ = librosa.load(str(f), sr=RATE, mono=True, duration=2.0)
        clips.append(np.pad(y, (0, max(0, 2 * RATE - len(y))))[: 2 * RATE])
    return clips


def distinct_clip(clips: list[np.ndarray], i: int) -> bytes:
    """Search i's upload: a bundled clip with its own gain and noise (so every upload is new)."""
    rng = np.random.default_rng(i)
    y = clips[i % len(clips)] * rng.uniform(0.4, 0.9) + rng.normal(0, 0.003, 2 * RATE)
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1).astype(np.float32), RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def bench_soak(work: Path, model: str, searches: int = 1000, clients: int = 4, every: int = 200,
               bound_mb: float = 20.0, max_age: float = 600.0, interval: float = 5.0) -> dict:
    import httpx
    from gradio_client import Client, handle_file

    data_dir, temp_dir, client_dir = work / "soak-data", work / "soak-temp", work / "soak-client"
    client_dir.mkdir(parents=True, exist_ok=True)
    env = {"SOUNDALIKE_MODEL": model, "SOUNDALIKE_TEMP_DIR": str(temp_dir), "SOUNDALIKE_CACHE_MAX_MB": str(bound_mb),
           "SOUNDALIKE_CACHE_MAX_AGE": str(max_age), "SOUNDALIKE_SWEEP_INTERVAL": str(interval)}
    clips = source_clips()
    rows: list[dict] = []
    latencies: dict[str, list[float]] = {"rest": [], "gradio": []}
    errors: list[str] = []
    with app_process(data_dir, env, work / "soak-app.log") as (url, proc), httpx.Client(base_url=url, timeout=300) as http:
        job = http.post("/api/index/sample").json()["job_id"]
        while (state := http.get(f"/api/index/{job}").json())["state"] in ("queued", "running"):
            time.sleep(1)
        assert state["state"] == "done", state
        count = http.get("/api/stats").json()["count"]
        gradio_clients = [Client(url, verbose=False) for _ in range(clients)]

        def record(done: int, label: str) -> None:
            mb, files = folder_mb(temp_dir)
            rows.append({"searches": done, "when": label, "cache_mb": round(mb, 1), "cache_files": files,
                         "rss_mb": round(rss_mb(proc.pid), 1)})
            print(f"  soak {done}/{searches}: {rows[-1]}", file=sys.stderr)

        def one(i: int) -> None:
            body = distinct_clip(clips, i)
            t0 = time.perf_counter()
            try:
                if i % 2 == 0:
                    r = http.post("/api/search", files={"file": (f"visitor-{i}.wav", body, "audio/wav")}, data={"top_k": "5"})
                    if r.status_code != 200:
                        errors.append(f"REST {r.status_code}: {r.text[:200]}")
                    latencies["rest"].append(time.perf_counter() - t0)
                else:
                    path = client_dir / f"visitor-{i}.wav"
                    path.write_bytes(body)
                    out = gradio_clients[i % clients].predict(handle_file(str(path)), 5, "(any category)", None, api_name="/search")
                    path.unlink()
                    if not str(out[0]).startswith("Top 5"):
                        errors.append(f"Gradio: {str(out[0])[:200]}")
                    latencies["gradio"].append(time.perf_counter() - t0)
            except Exception as exc:  # counted, and the soak goes on
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

        record(0, "start")
        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for start in range(0, searches, every):
                list(pool.map(one, range(start, min(searches, start + every))))
                record(min(searches, start + every), "after")
        wall = time.perf_counter() - began
        time.sleep(interval + 2)
        record(searches, "end (idle one sweep)")
    base = next((r["rss_mb"] for r in rows if r["searches"] >= min(every, searches) and r["when"] == "after"), rows[0]["rss_mb"])
    end = rows[-1]
    checks = {
        "all answered": not errors,
        f"cache <= {bound_mb:g} MB at the end": end["cache_mb"] <= bound_mb,
        f"RSS within {RSS_TOLERANCE:.0%} of after-{every}": end["rss_mb"] <= base * (1 + RSS_TOLERANCE),
    }
    return {
        "model": model, "library": count, "searches": searches, "clients": clients, "bound_mb": bound_mb,
        "max_age_s": max_age, "sweep_interval_s": interval, "wall_s": round(wall, 1),
        "searches_per_s": round(searches / wall, 2),
        "p50_ms": {k: round(1000 * float(np.median(v)), 1) for k, v in latencies.items() if v},
        "p95_ms": {k: round(1000 * float(np.percentile(v, 95)), 1) for k, v in latencies.items() if v},
        "errors": errors[:20], "error_count": len(errors), "rows": rows, "checks": checks, "passed": all(checks.values()),
    }


def soak_tables(result: dict) -> list[tuple[str, list[dict]]]:
    summary = [{
        "model": result["model"], "library": result["library"], "searches": result["searches"], "clients": result["clients"],
        "searches/s": result["searches_per_s"], "REST p50/p95 ms": f"{result['p50_ms'].get('rest')}/{result['p95_ms'].get('rest')}",
        "Gradio p50/p95 ms": f"{result['p50_ms'].get('gradio')}/{result['p95_ms'].get('gradio')}", "errors": result["error_count"],
        "bound MB": result["bound_mb"], "passed": result["passed"],
    }]
    checks = [{"check": k, "ok": v} for k, v in result["checks"].items()]
    return [("soak: visitor files and memory over time", result["rows"]), ("soak summary", summary), ("soak checks", checks)]


def main(argv=None) -> int:
    """`python -m benchmarks.soak [N]`: the soak alone; exit status 1 when a check fails."""
    from .common import table

    n = int((argv or sys.argv[1:] or [1000])[0])
    with tempfile.TemporaryDirectory(prefix="soundalike-soak-") as tmp:
        result = bench_soak(Path(tmp), "aisfx", searches=n)
    print("".join(table(t, r) for t, r in soak_tables(result)))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
