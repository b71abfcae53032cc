"""Many indexers, one library: `index --shard K/N` in 1, 2 and 4 processes at once into one real
Milvus server (benchmarks/milvus_server.py), each process a CLI run as a user starts it (model load
included). Reports the wall time until the last one ends, clips/s, the speed-up over one process,
and that the library then holds every file once (no file lost or stored twice)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO


def bench_shards(folder: Path, work: Path, processes=(1, 2, 4), model: str = "aisfx") -> list[dict]:
    from search_core.indexer import collect
    from search_core.settings import Settings
    from search_core.library import Library

    from .milvus_server import start_milvus_server

    files = len(collect([folder])[0])
    server = start_milvus_server(work / "milvus_shards")
    rows = []
    try:
        for n in processes:
            library = f"shards{n}"
            env = {**os.environ, "MILVUS_URI": server.uri, "SOUNDALIKE_DATA_DIR": str(work / f"shards_data_{n}"),
                   "SOUNDALIKE_MODEL": model, "SOUNDALIKE_LIBRARY": library,
                   # the cores shared out: n processes of 2 // n threads each (at least one)
                   "SOUNDALIKE_TORCH_THREADS": str(max(1, (os.cpu_count() or 2) // n))}
            logs = [open(work / f"shards_{n}_{k}.log", "w") for k in range(1, n + 1)]
            t = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-m", "search_core", "index", str(folder), *(["--shard", f"{k}/{n}"] if n > 1 else [])],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT) for k, log in enumerate(logs, 1)]
            codes = [p.wait() for p in procs]
            wall = time.perf_counter() - t
            for log in logs:
                log.close()
            lib = Library(Settings(data_dir=work / f"shards_data_{n}", milvus_uri=server.uri, model=model, library=library))
            stored = lib.count()
            rows.append({"processes": n, "inference": lib.embedder.inference, "threads_each": env["SOUNDALIKE_TORCH_THREADS"],
                         "files": files, "stored": stored,
                         "exit_codes": codes, "wall_s": round(wall, 1), "clips_per_s": round(files / wall, 1)})
            print(f"shards {n}: {files} files in {wall:.1f} s, {stored} stored, exit {codes}", file=sys.stderr)
        one = rows[0]["clips_per_s"]
        for r in rows:
            r["vs_one"] = round(r["clips_per_s"] / one, 2)
    finally:
        server.stop()
    return rows
