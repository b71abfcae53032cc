"""Search at scale in Milvus Lite: Store.search (the mirror), Lite's own search and numpy brute force."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .common import current_rss_mb, du_mb, pct



def bench_scale(sizes, dims, queries, workdir: Path) -> list[dict]:
    from search_core.store import Record, Store

    rows = []
    for dim in dims:
        for n in sizes:
            rng = np.random.default_rng(n + dim)
            x = rng.normal(size=(n, dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            db = workdir / f"scale_{dim}_{n}" / "s.db"
            store = Store(str(db), "bench", "synthetic", dim)
            t = time.perf_counter()
            now = time.time()
            for start in range(0, n, 2000):
                store.upsert([Record(f"v{i}", x[i], f"/lib/{i}.wav", f"v{i}", f"l{i % 16}", 1.0 + i % 9, 44100, now)
                              for i in range(start, min(n, start + 2000))])
            insert_s = time.perf_counter() - t
            qs = x[rng.integers(0, n, queries)] + rng.normal(scale=0.05, size=(queries, dim)).astype(np.float32)
            t = time.perf_counter()
            store.search(qs[0], 10)  # loads the mirror (once per process)
            mirror_load_s = time.perf_counter() - t
            ours, lite, brute, recall_ours, recall_lite = [], [], [], [], []
            for q in qs:
                t = time.perf_counter()
                scores = x @ (q / np.linalg.norm(q))
                top = np.argpartition(-scores, 10)[:10]
                top = top[np.argsort(-scores[top])]
                brute.append(time.perf_counter() - t)
                truth = {f"v{i}" for i in top}
                t = time.perf_counter()
                hits = store.search(q, 10)
                ours.append(time.perf_counter() - t)
                recall_ours.append(len(truth & {h.id for h in hits}) / 10)
                t = time.perf_counter()
                res = store.client.search("bench", data=[q.tolist()], limit=10, output_fields=["file_id", "path", "name", "label", "duration"],
                                          search_params={"metric_type": "COSINE"})
                lite.append(time.perf_counter() - t)
                recall_lite.append(len(truth & {h["entity"]["file_id"] for h in res[0]}) / 10)  # a row's id is its segment's
            rows.append({
                "dim": dim, "vectors": n, "insert_per_s": round(n / insert_s), "store_search_p50_ms": round(pct(ours, 50), 1),
                "store_search_p95_ms": round(pct(ours, 95), 1), "lite_native_p50_ms": round(pct(lite, 50), 1),
                "numpy_p50_ms": round(pct(brute, 50), 1), "store/numpy": round(pct(ours, 50) / pct(brute, 50), 2),
                "lite_native/numpy": round(pct(lite, 50) / pct(brute, 50), 1), "recall@10": round(float(np.mean(recall_ours)), 4),
                "lite_native_recall@10": round(float(np.mean(recall_lite)), 4), "mirror_load_s": round(mirror_load_s, 1),
                "rss_mb": round(current_rss_mb()), "disk_mb": round(du_mb(db.parent), 1),
            })
            print(f"scale {dim}-d {n}: ours {rows[-1]['store_search_p50_ms']} ms, lite {rows[-1]['lite_native_p50_ms']} ms, "
                  f"numpy {rows[-1]['numpy_p50_ms']} ms, insert {rows[-1]['insert_per_s']}/s", file=sys.stderr)
            store.drop()
            Store.close_all()
            del x
    return rows
