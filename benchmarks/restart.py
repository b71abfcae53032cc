"""Restart benchmark: how long a reopened Milvus Lite library takes to answer its first search.

A library of N synthetic unit vectors (clustered, like embeddings) is built and closed in one
process (its search mirror is saved beside the file); then fresh processes reopen it and time
(a) opening the store, (b) the first search, which loads the saved mirror and checks it against
the collection, and (c) the same with the saved copy removed, which reads every vector back from
Milvus Lite (what every restart cost before the mirror was kept on disk).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO

BUILD = r"""
import json, sys, time, numpy as np
sys.path.insert(0, {repo!r})
from search_core.store import Record, Store
n, dim = {n}, {dim}
rng = np.random.default_rng(0)
centres = rng.normal(size=(64, dim)).astype(np.float32)
store = Store({uri!r}, "bench", "synthetic", dim)
t = time.perf_counter()
now = time.time()
for start in range(0, n, 2000):
    k = min(n, start + 2000) - start
    x = centres[rng.integers(0, 64, k)] + 0.5 * rng.normal(size=(k, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store.upsert([Record(f"v{{start + i}}", x[i], f"/lib/{{start + i}}.wav", f"v{{start + i}}", f"l{{(start + i) % 16}}", 1.0, 44100, now)
                  for i in range(k)])
insert_s = time.perf_counter() - t
t = time.perf_counter()
Store.close_all()  # saves the mirror
print(json.dumps({{"insert_s": insert_s, "save_s": time.perf_counter() - t}}))
"""

REOPEN = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
import numpy as np
from search_core.store import Store
t = time.perf_counter()
store = Store({uri!r}, "bench", "synthetic", {dim})
open_s = time.perf_counter() - t
q = np.random.default_rng(1).normal(size={dim}).astype(np.float32)
t = time.perf_counter()
hits = store.search(q, 10)
first_s = time.perf_counter() - t
mirror = Store._mirrors[({uri!r}, "bench")]
t = time.perf_counter()
store.search(q, 10)
again_ms = (time.perf_counter() - t) * 1000
print(json.dumps({{"open_s": open_s, "first_search_s": first_s, "next_search_ms": again_ms, "hits": len(hits),
                  "from_saved_copy": mirror.saved_generation == mirror.generation, "rows": len(mirror)}}))
"""


def _run(script: str) -> dict:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - t
    return row


def bench_restart(work: Path, sizes=(100_000,), dim: int = 512, cold: bool = True) -> list[dict]:
    rows = []
    for n in sizes:
        uri = str(work / f"restart_{dim}_{n}" / "r.db")
        built = _run(BUILD.format(repo=str(REPO), uri=uri, n=n, dim=dim))
        snapshot = Path(f"{uri}.mirror") / "bench.npz"
        warm = [_run(REOPEN.format(repo=str(REPO), uri=uri, dim=dim)) for _ in range(3)]
        warm.sort(key=lambda r: r["first_search_s"])
        best = warm[1]  # the median of three
        row = {
            "vectors": n, "dim": dim, "insert_per_s": round(n / built["insert_s"]), "save_s": round(built["save_s"], 2),
            "saved_copy_mb": round(snapshot.stat().st_size / 2**20, 1) if snapshot.exists() else None,
            "open_s": round(best["open_s"], 2), "first_search_s": round(best["first_search_s"], 2),
            "open_plus_first_s": round(best["open_s"] + best["first_search_s"], 2), "next_search_ms": round(best["next_search_ms"], 1),
            "from_saved_copy": all(r["from_saved_copy"] for r in warm), "process_s": round(best["process_s"], 1),
        }
        if cold:  # the saved copy removed: every vector read back from Milvus Lite
            snapshot.unlink(missing_ok=True)
            c = _run(REOPEN.format(repo=str(REPO), uri=uri, dim=dim))
            row.update({"without_copy_first_search_s": round(c["first_search_s"], 1), "without_copy_from_saved": c["from_saved_copy"]})
        rows.append(row)
        print(f"restart {n} x {dim}: open {row['open_s']} s + first search {row['first_search_s']} s "
              f"(without the saved copy: {row.get('without_copy_first_search_s')} s)", file=sys.stderr)
    return rows


if __name__ == "__main__":  # python -m benchmarks.restart 100000
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(bench_restart(Path(d), tuple(int(a) for a in sys.argv[1:]) or (100_000,)), indent=2))
