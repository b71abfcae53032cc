"""Peak memory per model: loaded, while indexing, and for a 10-minute file (each in a fresh process,
so peaks do not mix). Each model is first loaded once on its own ("first"): that process exports
the fast path's graph (a new workdir has new random PANNs weights), a one-time cost the later rows
do not pay, as a user's later processes do not."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .common import REPO, SAMPLE

MEMORY_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from benchmarks.common import settings_for, query_file
from pathlib import Path
from search_core.library import Library
from search_core.audio import load_audio
work = Path({work!r}); what = {what!r}; model = {model!r}
def peak():  # VmHWM: this process's own peak (ru_maxrss would inherit the parent's across fork/exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
out = {{"model": model, "what": what}}
lib = Library(settings_for(model, work, "mem_" + what + "_" + model))
out["loaded_mb"] = round(peak())
if what == "index":
    lib.index([{sample!r}])
elif what == "long":
    import numpy as np, soundfile as sf
    p = work / "long_10min.wav"
    if not p.exists():
        base = load_audio(query_file(30, work), 44100).samples
        sf.write(p, np.tile(base, 20), 44100)
    t = time.perf_counter()
    clip = load_audio(p, lib.embedder.sample_rate, max_seconds=700)
    lib.embedder.embed_one(clip.samples)
    out["seconds"] = round(time.perf_counter() - t, 1)
elif what == "model":
    lib.embedder.embed_one(load_audio(query_file(10, work), lib.embedder.sample_rate).samples)
out["peak_mb"] = round(peak())
print(json.dumps(out))
"""


def bench_memory(models, workdir: Path, long_file: bool) -> list[dict]:
    rows = []
    for model in models:
        for what in ["first", "model", "index"] + (["long"] if long_file else []):
            code = MEMORY_SCRIPT.format(repo=str(REPO), work=str(workdir), what=what, model=model, sample=str(SAMPLE))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                rows.append({"model": model, "what": what, "error": r.stderr.strip().splitlines()[-1][:200]})
                continue
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"memory {model} {what}: {rows[-1]}", file=sys.stderr)
    return rows
