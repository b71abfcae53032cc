"""What the benchmark sections share: where things are, percentiles, memory, tables, the models'
settings for a run, and query files. Every section imports from here; nothing imports the runner."""
from __future__ import annotations

import resource
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from search_core.audio import load_audio  # noqa: E402
from search_core.settings import Settings  # noqa: E402


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    frame = pd.DataFrame(rows).fillna("")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False)]
    return f"\n## {title}\n\n" + "\n".join(lines) + "\n"


def panns_checkpoint(workdir: Path) -> Path:
    """A random-weights Cnn14 checkpoint in the released layout (speed/memory only)."""
    import torch

    from search_core.embedders.panns import build_cnn14

    path = workdir / "Cnn14_random.pth"
    if not path.exists():
        torch.save({"model": build_cnn14().state_dict()}, path)
    return path


def settings_for(model: str, workdir: Path, data: str = "data") -> Settings:
    s = Settings(data_dir=workdir / data, model=model, allow_download=False)
    if model == "panns-cnn14":
        s = s.with_(panns_checkpoint=panns_checkpoint(workdir))
    return s


def query_file(seconds: float, workdir: Path) -> Path:
    """A realistic query: bundled clips played one after another, cut to length, 44.1 kHz stereo wav."""
    path = workdir / f"query_{seconds:g}s.wav"
    if not path.exists():
        clips = sorted(SAMPLE.rglob("*.ogg"))
        parts, total = [], 0
        rng = np.random.default_rng(int(seconds))
        while total < seconds * 44100:
            c = load_audio(clips[rng.integers(len(clips))], 44100).samples
            parts.append(c)
            total += len(c)
        y = np.concatenate(parts)[: int(seconds * 44100)]
        sf.write(path, np.stack([y, y], axis=1), 44100)
    return path
