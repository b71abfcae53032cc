"""Load: 32 visitors searching at once over HTTP, against the real app on 2 cores.

The app (`python app.py`, its own process) indexes the bundled set; then `clients` threads post
`searches` distinct 2-second uploads to `POST /api/search` as fast as they are answered. Reported:
every status code (target: no 5xx), throughput, and latency percentiles as a visitor sees them
(queueing included: 2 cores serve 32 clients).
"""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .running import app_process
from .soak import distinct_clip, source_clips


def bench_load(work: Path, model: str, clients: int = 32, searches: int = 320) -> dict:
    import httpx

    clips = source_clips()
    codes: Counter[str] = Counter()
    latencies: list[float] = []
    with app_process(work / "load-data", {"SOUNDALIKE_MODEL": model}, work / "load-app.log") as (url, _):
        with httpx.Client(base_url=url, timeout=600) as http:
            job = http.post("/api/index/sample").json()["job_id"]
            while (state := http.get(f"/api/index/{job}").json())["state"] in ("queued", "running"):
                time.sleep(1)
            assert state["state"] == "done", state
            library = http.get("/api/stats").json()["count"]
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        with httpx.Client(base_url=url, timeout=600, limits=limits) as http:
            def one(i: int) -> None:
                body = distinct_clip(clips, 10_000 + i)
                t0 = time.perf_counter()
                try:
                    r = http.post("/api/search", files={"file": (f"load-{i}.wav", body, "audio/wav")}, data={"top_k": "5"})
                    codes[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    codes[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - t0)

            began = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(one, range(searches)))
            wall = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000
    return {"model": model, "library": library, "clients": clients, "searches": searches, "codes": dict(codes),
            "errors_5xx": sum(n for c, n in codes.items() if c.startswith("5")), "not_200": searches - codes.get("200", 0),
            "searches_per_s": round(searches / wall, 1), "p50_ms": round(float(np.median(ms))), "p95_ms": round(float(np.percentile(ms, 95))),
            "max_ms": round(float(ms.max()))}
