"""Soundalike benchmarks, on the real code paths the app uses (no mocks).

    python -m benchmarks                 # full run (~15 min on 2 cores), table + benchmarks/results.json
    python -m benchmarks --smoke         # ~1 min: tiny sizes, checks the machinery (CI-friendly)
    python -m benchmarks --only latency indexing --models aisfx
    python -m benchmarks --only scale --scale-sizes 10000 100000 1000000

Sections:
  latency   end-to-end query (decode + embed + search + DataFrame) vs the model's own forward time
  indexing  indexer throughput vs model-only throughput on the same clips, per inference path (torch
            eager, ONNX Runtime, its int8 graph) with each path's cosine to torch; thread settings
  profile   where indexing's time goes per model and path: decode, front end, forward, store writes
  quality   aisfx's leave-one-out retrieval quality (eval: P@1, P@5, mAP) per inference path
  scale     search in Milvus Lite at 10k/100k vectors: Store.search (Lite mirror), Milvus Lite's own
            search and numpy brute force; recall@10, insert rate, RSS, size on disk
  memory    peak RSS per model, while indexing, and for a 10-minute file (separate processes)
  scan      finding bundled clips inside long noisy recordings (benchmarks/scan.py): exact-clip
            recall/precision per threshold vs embedding alone, onset error, real-time factor, and
            10- and 60-minute recordings end to end (time, peak memory); CLI runs, model load included
  dupes     the near-duplicate finder (benchmarks/dupes.py): altered copies of sample clips among the
            others, pair recall/precision per threshold vs embedding alone; with --dupes-scale 10000,
            its time on a library of 10k generated files (indexing them takes ~40 min on 2 cores)
  wild      (only with --only wild) scan on recordings of the wild (benchmarks/wild.py): a library
            part of the bundled set, its sounds altered (speed, pitch, stretch, telephone, reverb,
            mp3, overlap) 0-15 dB over game music between sounds NOT in the library; recall per
            condition, precision, false detections per hour; threshold tuned on other seeds
  heldout   (only with --only heldout) category suggestion on 126 sounds of other Debian games
            (benchmarks/heldout.py): the neighbour vote and the classifier, both from the library alone
  restart   a reopened Lite library's first search (benchmarks/restart.py): open + first search with
            the saved search mirror, and without it (every vector read back from Milvus Lite)
  map       the library map (benchmarks/libmap.py): how well layouts keep category neighbourhoods on
            the bundled set (PCA, t-SNE, UMAP when installed), and at 10k generated sounds the layout's
            time, its size on the wire, and in Chromium opening the tab, hover and click-to-player times
  load      32 clients searching at once over HTTP against the running app (benchmarks/load.py):
            status codes (no 5xx), searches/s, p50/p95 latency as the clients see it
  soak      (only with --only soak) 1,000 searches with distinct uploads through the REST and Gradio
            APIs of the running app: the visitor-file folder and RSS over time (benchmarks/soak.py);
            the run exits 1 when the folder ends over its bound or RSS grew more than 10 %
  live      (only with --only live) wild recordings served at real-time pace over loopback HTTP and
            followed by `monitor` (benchmarks/live.py): wall latency p50/p95 from a sound's end to its
            line, recall/precision against the truth and the offline scan, CPU share, 1-3 streams at once
  shards    (only with --only shards) `index --shard K/N` in 1, 2 and 4 processes at once into one real
            Milvus server (benchmarks/shards.py): wall time, clips/s, speed-up, every file stored once
  server    (only with --only server) 1M x 512 vectors on a real Milvus server (benchmarks/server.py):
            insert rate, index build, load, restart, top-10 p50/p95 and recall@10 against exact;
            --server-size sets N, --server-uri uses a running server instead of starting one

`--only` runs merge their sections into an existing results.json.

PANNs Cnn14 runs with random weights built from the real architecture (the released checkpoint
cannot be downloaded here); its speed and memory do not depend on the weights' values.
Numbers are medians of repeated runs on a shared, noisy machine: read the ratios first.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

from .common import REPO, SAMPLE, table

ALL = ["latency", "indexing", "profile", "quality", "scale", "memory", "scan", "wild", "heldout", "dupes", "restart", "map", "load", "soak", "server", "live", "shards"]
DEFAULT = ["latency", "indexing", "profile", "quality", "scale", "memory", "scan", "dupes", "restart", "map", "load"]
PLAIN_TABLES = ("latency", "indexing", "profile", "quality", "scale", "memory", "restart", "load", "server", "shards")  # one table each, in this order


def _latency(args, work: Path, smoke: bool, models: list[str]):
    from .latency import bench_latency

    return bench_latency(models, [1, 5] if smoke else [1, 5, 10, 30], 3 if smoke else 20, work, 10 if smoke else 60)


def _indexing(args, work: Path, smoke: bool, models: list[str]):
    from .indexing import bench_indexing, generated_set

    sets = {"generated_20": generated_set(20, work)} if smoke else {"sample_data": SAMPLE, "generated_500": generated_set(500, work)}
    rows = bench_indexing(models, sets, work, [(0, 1)])  # the defaults: the runtime picks its threads (2 here), one decode worker
    if not smoke and "aisfx" in models:  # thread settings for 2 cores, on the sample set, on the default path
        rows += bench_indexing(["aisfx"], {"sample_data": SAMPLE}, work, [(1, 1), (1, 2), (2, 1), (2, 2)], inference=("auto",))
    return rows


def _profile(args, work: Path, smoke: bool, models: list[str]):
    from .indexing import bench_profile, generated_set

    return bench_profile(models, generated_set(20, work) if smoke else SAMPLE, work)


def _quality(args, work: Path, smoke: bool, models: list[str]):
    from .indexing import bench_quality

    return [] if smoke or "aisfx" not in models else bench_quality(SAMPLE, work)


def _scale(args, work: Path, smoke: bool, models: list[str]):
    from .scale import bench_scale

    return bench_scale([2000] if smoke else args.scale_sizes, [512] if smoke else [512, 2048], 5 if smoke else 30, work)


def _memory(args, work: Path, smoke: bool, models: list[str]):
    from .memory import bench_memory

    return bench_memory(models, work, long_file=not smoke)


def _scan(args, work: Path, smoke: bool, models: list[str]):
    from .scan import bench_scan

    return bench_scan(work, "mfcc" if smoke else "aisfx", dict(os.environ), smoke, () if smoke else (10.0, 60.0))


def _wild(args, work: Path, smoke: bool, models: list[str]):
    from .wild import bench_wild

    return bench_wild(work, "mfcc" if smoke else "aisfx", dict(os.environ), smoke)


def _heldout(args, work: Path, smoke: bool, models: list[str]):
    from .heldout import bench_heldout

    return bench_heldout(work, ["mfcc"] if smoke else models)


def _dupes(args, work: Path, smoke: bool, models: list[str]):
    from .dupes import bench_dupes

    return bench_dupes(work, "mfcc" if smoke else "aisfx", smoke, () if smoke else tuple(args.dupes_scale))


def _restart(args, work: Path, smoke: bool, models: list[str]):
    from .restart import bench_restart

    return bench_restart(work, (2000,) if smoke else tuple(args.restart_sizes))


def _map(args, work: Path, smoke: bool, models: list[str]):
    from .libmap import bench_map

    return bench_map(work, "mfcc" if smoke else "aisfx", smoke, (300,) if smoke else tuple(args.map_sizes))


def _load(args, work: Path, smoke: bool, models: list[str]):
    from .load import bench_load

    return [bench_load(work, "mfcc" if smoke else "aisfx", clients=8 if smoke else 32, searches=24 if smoke else 320)]


def _soak(args, work: Path, smoke: bool, models: list[str]):
    from .soak import bench_soak

    return bench_soak(work, "mfcc" if smoke else "aisfx", searches=40 if smoke else args.soak_searches, every=20 if smoke else 200)


def _server(args, work: Path, smoke: bool, models: list[str]):
    from .server import bench_server

    return bench_server(work, 2000 if smoke else args.server_size, 20 if smoke else 200, uri=args.server_uri)


def _live(args, work: Path, smoke: bool, models: list[str]):
    from .live import bench_live

    parts = tuple(os.environ.get("SOUNDALIKE_LIVE_PARTS", "stream,streams,scan,long").split(","))
    return bench_live(work, "mfcc" if smoke else "aisfx", smoke, parts)


def _shards(args, work: Path, smoke: bool, models: list[str]):
    from .indexing import generated_set
    from .shards import bench_shards

    return bench_shards(generated_set(20 if smoke else 500, work), work, model="mfcc" if smoke else "aisfx")


SECTIONS: dict[str, Callable] = {"latency": _latency, "indexing": _indexing, "profile": _profile, "quality": _quality, "scale": _scale, "memory": _memory, "scan": _scan,
                                 "wild": _wild, "heldout": _heldout, "dupes": _dupes, "restart": _restart, "map": _map, "load": _load,
                                 "soak": _soak, "server": _server, "live": _live, "shards": _shards}


def _tables(name: str, rows) -> list[tuple[str, list[dict]]]:
    """A section's tables: (title, rows) each."""
    if name in PLAIN_TABLES:
        return [(name, rows)]
    import importlib

    module, func = {"scan": ("scan", "scan_tables"), "wild": ("wild", "wild_tables"), "dupes": ("dupes", "dupes_tables"),
                    "map": ("libmap", "map_tables"), "soak": ("soak", "soak_tables"), "live": ("live", "live_tables"),
                    "heldout": ("heldout", "heldout_tables")}[name]
    return getattr(importlib.import_module(f"benchmarks.{module}"), func)(rows)


def report(result: dict) -> str:
    """The Markdown tables of a run: the plain sections first, then the others in run order."""
    order = [k for k in PLAIN_TABLES if k in result] + [k for k in ("scan", "wild", "heldout", "dupes", "map", "soak", "live") if k in result]
    return "# Soundalike benchmarks" + "".join(table(title, rows) for k in order for title, rows in _tables(k, result[k]))


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that everything runs (~1 min)")
    ap.add_argument("--only", nargs="+", choices=ALL,
                    help="soak is only run when named here (it takes ~5 min and fails the run when its checks fail)")
    ap.add_argument("--models", nargs="+", default=["aisfx", "panns-cnn14", "mfcc"])
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results.json"))
    ap.add_argument("--scale-sizes", nargs="+", type=int, default=[10_000, 100_000],
                    help="vector counts for the scale section (1000000 works but inserting it into Lite takes 10-30 min per dim)")
    ap.add_argument("--restart-sizes", nargs="+", type=int, default=[100_000], help="library sizes (512-d) of the restart section")
    ap.add_argument("--dupes-scale", nargs="*", type=int, default=[], help="generated library sizes to time dupes on (e.g. 10000)")
    ap.add_argument("--map-sizes", nargs="+", type=int, default=[10_000], help="generated library sizes of the map section")
    ap.add_argument("--soak-searches", type=int, default=1000, help="searches of the soak section")
    ap.add_argument("--server-size", type=int, default=1_000_000, help="vectors (512-d) of the server section")
    ap.add_argument("--server-uri", help="run the server section on this Milvus server instead of starting one")
    ap.add_argument("--workdir", help="keep generated files here (default: a temp dir)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sections = args.only or DEFAULT
    smoke = args.smoke
    models = ["mfcc"] if smoke else args.models
    tmp = tempfile.TemporaryDirectory(prefix="soundalike-bench-")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "smoke": smoke, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in ALL:  # in this order, whatever the order of --only
        if name in sections:
            result[name] = SECTIONS[name](args, work, smoke, models)
    print(report(result))
    out = Path(args.json)
    if args.only and not smoke and out.exists():  # a partial run updates its sections, keeps the others
        merged = json.loads(out.read_text())
        merged.update({k: v for k, v in result.items() if k in sections or k == "machine"})
        if "live" in sections and os.environ.get("SOUNDALIKE_LIVE_PARTS"):  # some parts of live: the others stay
            merged["live"] = {**json.loads(out.read_text()).get("live", {}), **result["live"]}
        merged.setdefault("updated", {}).update({k: result["started"] for k in sections})
        result = merged
    out.write_text(json.dumps(result, indent=2))
    print(f"\n(JSON: {args.json})")
    tmp.cleanup()
    return 0 if result.get("soak", {}).get("passed", True) else 1
