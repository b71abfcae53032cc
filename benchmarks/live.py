"""Live monitoring (`python -m benchmarks --only live`): recordings of the wild benchmark served at
real-time pace over loopback HTTP, as an Icecast server would, and followed by `Monitor`.

Per run: wall-clock latency from the end of each detected library sound (when its last sample was
sent) to its event, p50/p95; recall and precision of the live detections against the ground truth
and against the same recording scanned offline; the share of the machine one stream takes (CPU
seconds / stream seconds); RSS at the start and the end. Then several streams at once, each in its
own process: whether they keep real time (lag stays bounded) on this machine.
"""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .common import REPO
from .scan import match_insertions
from .wild_mixes import build_wild_mix, split

SEEDS = (100, 101)  # the wild benchmark's report seeds
MINUTES = 2.0


def ogg_pages(data: bytes, rate: int) -> list[tuple[float, bytes]]:
    """An Ogg file's pages, each with the stream time (s) its last sample ends at (the page's
    granule position); header pages carry none and go out at once."""
    pages, at, t = [], 0, 0.0
    while at + 27 <= len(data) and data[at : at + 4] == b"OggS":
        granule = int.from_bytes(data[at + 6 : at + 14], "little", signed=True)
        count = data[at + 26]
        size = 27 + count + sum(data[at + 27 : at + 27 + count])
        t = granule / rate if granule > 0 else t
        pages.append((t, data[at : at + size]))
        at += size
    return pages


class PacedStream(http.server.BaseHTTPRequestHandler):
    """Serves an Ogg file once, at real-time pace as a live broadcast does: each page when the
    stream's clock reaches its last sample (so a page's length, ~0.5 s, is part of the latency)."""

    pages: list = []
    started: list = []

    def do_GET(self):  # noqa: N802
        if self.started:  # one broadcast: a monitor that comes back after it meets an ended stream
            self.send_error(503, "the broadcast has ended")
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/ogg")
        self.end_headers()
        began = time.monotonic()
        self.started.append(time.time())
        try:
            for end, page in self.pages:
                # a live encoder has a page once its last sample was captured: that is when it is sent
                time.sleep(max(0.0, began + end - time.monotonic()))
                self.wfile.write(page)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def serve(path: Path, seconds: float) -> tuple[http.server.ThreadingHTTPServer, type]:
    import soundfile as sf

    handler = type("Paced", (PacedStream,), {"pages": ogg_pages(path.read_bytes(), sf.info(str(path)).samplerate), "started": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def follow(settings_env: dict, url: str, seconds: float) -> list[dict]:
    """`python -m search_core monitor URL` for `seconds`, its JSON lines."""
    log = open(Path(settings_env["SOUNDALIKE_DATA_DIR"]).parent / f"monitor-{time.time_ns()}.log", "w")  # a pipe nobody reads fills up
    proc = subprocess.Popen([sys.executable, "-m", "search_core", "monitor", url, "--status-every", "10"], cwd=REPO,
                            env={**os.environ, **settings_env}, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(x) for x in proc.stdout), daemon=True)
    reader.start()
    time.sleep(seconds)
    proc.send_signal(2)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    log.close()
    return lines


SOAK_MINUTES = float(os.environ.get("SOUNDALIKE_LIVE_SOAK_MINUTES", "60"))  # stream minutes of the long run


def bench_live(work: Path, model: str, smoke: bool, parts: tuple[str, ...] = ("stream", "streams", "scan", "long")) -> dict:
    """`parts`: stream (one paced stream per seed), streams (several at once), scan (live against
    offline on the scan benchmark's recordings), long (memory over a long, accelerated run)."""
    out: dict = {}
    if "scan" in parts:
        out["against_scan"] = against_scan(work, model, smoke)
    if "long" in parts:
        out["long_run"] = long_run(work, model, 2.0 if smoke else SOAK_MINUTES)
    if "stream" in parts or "streams" in parts:
        out.update(paced(work, model, smoke, "streams" in parts))
    return out


def paced(work: Path, model: str, smoke: bool, streams: bool) -> dict:
    from search_core.library import Library
    from search_core.scan import Scanner
    from search_core.settings import Settings
    from search_core.store import Store

    settings = Settings(data_dir=work / f"live_{model}", model=model, allow_download=False)
    library, _ = split()
    Library(settings).index([p for p, _ in library])
    env = {"SOUNDALIKE_DATA_DIR": str(settings.data_dir), "SOUNDALIKE_MODEL": model}
    minutes = 0.5 if smoke else MINUTES
    seeds = SEEDS[:1] if smoke else SEEDS
    runs = []
    for seed in seeds:
        rec = work / f"live_{seed}.ogg"
        truth = build_wild_mix(rec, minutes=minutes, seed=seed)
        offline = Scanner(Library(settings)).scan(rec)
        Store.close_all()
        server, handler = serve(rec, minutes * 60)
        lines = follow(env, f"http://127.0.0.1:{server.server_address[1]}/live.ogg", minutes * 60 + 20)
        server.shutdown()
        runs.append(score_run(seed, truth, lines, offline, handler.started[0] if handler.started else time.time()))
        print(f"live seed {seed}: {runs[-1]}", file=sys.stderr)
    return {"runs": runs, "streams": concurrent(env, work, seeds[0], minutes) if streams and not smoke else []}


def against_scan(work: Path, model: str, smoke: bool) -> dict:
    """The live scan (a Monitor on the file, as fast as it decodes) against the offline scan, on the
    scan benchmark's held-out recordings (seeds 100-105, the whole bundled set indexed): recall and
    precision of each, at the default threshold."""
    from search_core.library import Library
    from search_core.monitor import Monitor
    from search_core.scan import Scanner
    from search_core.settings import Settings

    from .mixes import build_mix
    from .scan import SAMPLE, score, twins

    lib = Library(Settings(data_dir=work / f"live_scan_{model}", model=model, allow_download=False))
    lib.index([SAMPLE])
    scanner = Scanner(lib)
    mixes = [(1.0, 4)] if smoke else [(2.5, 15)] * 6
    truths, offline, live = [], [], []
    for k, (minutes, clips) in enumerate(mixes):
        path = work / f"scan_mix_{100 + k}.ogg"
        truths.append(build_mix(path, minutes, clips, seed=100 + k))
        offline.append([d.as_dict() for d in scanner.scan(path).detections])
        events: list[dict] = []
        Monitor(scanner, str(path), sinks=[events.append], status_every=1e9).run()
        live.append([e for e in events if e["type"] == "detection"])
    same = twins()
    off, on = score(truths, offline, 0.0, same), score(truths, live, 0.0, same)
    row = {"recordings": len(mixes), "inserted": sum(len(t["insertions"]) for t in truths),
           "offline_recall": off["recall"], "live_recall": on["recall"], "recall_difference": round(on["recall"] - off["recall"], 3),
           "offline_precision": off["precision"], "live_precision": on["precision"],
           "offline_onset_error_s": off["median_onset_error_s"], "live_onset_error_s": on["median_onset_error_s"]}
    print(f"live against scan: {row}", file=sys.stderr)
    return row


def long_run(work: Path, model: str, minutes: float) -> dict:
    """Memory over a long stream, accelerated: `monitor -` fed a wild recording looped for
    `minutes` (ffmpeg -stream_loop), as fast as the monitor takes it; its status lines give the
    resident memory against stream time. The slope over the second half (after the caches have
    filled) is extrapolated to 24 hours."""
    from search_core.library import Library
    from search_core.monitor.sources import ffmpeg_exe
    from search_core.settings import Settings
    from search_core.store import Store

    settings = Settings(data_dir=work / f"live_long_{model}", model=model, allow_download=False)
    library, _ = split()
    Library(settings).index([p for p, _ in library])
    Store.close_all()
    rec = work / "live_long.ogg"
    build_wild_mix(rec, minutes=5.0, seed=102)
    feed = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i", str(rec),
                             "-t", str(minutes * 60), "-f", "wav", "pipe:1"], stdout=subprocess.PIPE)
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "search_core", "monitor", "-", "--status-every", "5"], cwd=REPO, stdin=feed.stdout,
                          env={**os.environ, "SOUNDALIKE_DATA_DIR": str(settings.data_dir), "SOUNDALIKE_MODEL": model},
                          capture_output=True, text=True, timeout=24 * 3600)
    wall = time.perf_counter() - began
    if feed.poll() is None:  # the monitor ended first (stopped by Ctrl-C): the feeder would wait on a full pipe
        feed.kill()
    feed.wait()
    statuses = [json.loads(x) for x in proc.stdout.splitlines() if '"type": "status"' in x]
    if not statuses:
        raise RuntimeError(f"the long monitor run failed: {proc.stderr[-500:]}")
    points = [(s["stream_time"] / 60, s["rss_mb"]) for s in statuses]
    half = [p for p in points if p[0] >= points[-1][0] / 2]
    slope = float(np.polyfit([p[0] for p in half], [p[1] for p in half], 1)[0]) * 60 if len(half) >= 3 else float("nan")
    every = max(1, len(points) // 12)
    row = {"stream_minutes": round(points[-1][0], 1), "wall_minutes": round(wall / 60, 1),
           "speed_x_real_time": round(points[-1][0] * 60 / wall, 2), "detections": statuses[-1]["detections"],
           "rss_mb_first": points[0][1], "rss_mb_peak": max(p[1] for p in points), "rss_mb_last": points[-1][1],
           "rss_mb_per_hour_second_half": round(slope, 1),
           "rss_mb_24h_extrapolated": round(points[-1][1] + slope * (24 - points[-1][0] / 60), 0) if slope == slope else None,
           "rss_by_stream_minute": " ".join(f"{m:.0f}:{r:.0f}" for m, r in points[::every])}
    print(f"live long run: {row}", file=sys.stderr)
    return row


def score_run(seed: int, truth: dict, lines: list[dict], offline, served_at: float) -> dict:
    detections = [e for e in lines if e["type"] == "detection"]
    statuses = [e for e in lines if e["type"] == "status"]
    live_matched, live_used = match_insertions(truth["insertions"], detections, {})
    off_matched, _ = match_insertions(truth["insertions"], [d.as_dict() for d in offline.detections], {})
    live_found = sum(d is not None for _, d, _ in live_matched)
    off_found = sum(d is not None for _, d, _ in off_matched)
    # wall latency: the event's wall time minus when the sound's last sample went on the wire;
    # the monitor's own: from the arrival of that sample at the monitor (decoded) to the event
    latency = [e["wall_time"] - (served_at + e["end"]) for e in detections]
    own = [e["latency"] for e in detections]
    return {
        "seed": seed, "inserted": len(truth["insertions"]), "detections": len(detections),
        "live_recall": round(live_found / max(1, len(truth["insertions"])), 3),
        "offline_recall": round(off_found / max(1, len(truth["insertions"])), 3),
        "live_precision": round(len(live_used) / max(1, len(detections)), 3),
        "offline_detections": len(offline.detections),
        "latency_p50_s": round(float(np.percentile(latency, 50)), 2) if latency else None,
        "latency_p95_s": round(float(np.percentile(latency, 95)), 2) if latency else None,
        "monitor_latency_p50_s": round(float(np.percentile(own, 50)), 2) if own else None,
        "monitor_latency_p95_s": round(float(np.percentile(own, 95)), 2) if own else None,
        "latencies": [{"name": e["name"], "end": round(e["end"], 2), "wall_s": round(w, 2), "monitor_s": o}
                      for e, w, o in zip(detections, latency, own)],
        "cpu_share": statuses[-1]["cpu_share"] if statuses else None,
        "rss_start_mb": statuses[0]["rss_mb"] if statuses else None, "rss_end_mb": statuses[-1]["rss_mb"] if statuses else None,
        **sounds_like_scores(truth, [e for e in lines if e["type"] == "sound"], [ev.as_dict() for ev in offline.sounds],
                              {label for _, label in split()[0]}),
    }


def sounds_like_scores(truth: dict, live: list[dict], offline: list[dict], categories: set[str]) -> dict:
    """The category layer on the inserted sounds: how many are sound events (one starting within
    0.5 s of the insertion), and how often the event's category is the sound's own label, for the
    library sounds and for the sounds that are not in the library (held out: other games'
    recordings; only those whose label is one of the library's categories can be right)."""
    def rate(placed: list[dict], events: list[dict]) -> tuple[float, float]:
        heard = right = 0
        for ins in placed:
            near = [e for e in events if abs(e["start"] - ins["start"]) <= 0.5]
            heard += bool(near)
            right += any(e["label"] == ins["label"] for e in near)
        return heard / max(1, len(placed)), right / max(1, len(placed))

    unseen = [d for d in truth["distractors"] if d["label"] in categories]
    lib_heard, lib_right = rate(truth["insertions"], live)
    new_heard, new_right = rate(unseen, live)
    return {"sound_events": len(live), "events_offline": len(offline), "inserted_heard": round(lib_heard, 3),
            "category_right_library": round(lib_right, 3), "category_right_unseen": round(new_right, 3),
            "unseen_heard": round(new_heard, 3), "unseen": len(unseen)}


def concurrent(env: dict, work: Path, seed: int, minutes: float) -> list[dict]:
    """1 to 4 streams at once, one monitor process each: a stream keeps real time when its
    monitor has consumed the whole broadcast by the time it is stopped (20 s after the end). With
    torch's default threads (one per core), with one torch thread per monitor
    (SOUNDALIKE_TORCH_THREADS=1), and with every numeric library on one thread (OMP, OpenBLAS, MKL
    too): several processes whose thread pools each span every core get in each other's way."""
    rec = work / f"live_{seed}.ogg"
    out = []
    import shutil

    # a Milvus Lite file is open in one process at a time: each monitor gets its own copy of the library
    data = Path(env["SOUNDALIKE_DATA_DIR"])
    envs = [env]
    for i in range(1, 4):
        copy = data.with_name(f"{data.name}_{i}")
        if not copy.exists():
            shutil.copytree(data, copy)
        envs.append({**env, "SOUNDALIKE_DATA_DIR": str(copy)})
    one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the numeric libraries' pools too
    for n, threads in ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (2, "all 1"), (3, "all 1"), (4, "all 1")):
        envs_now = [{**e, "SOUNDALIKE_TORCH_THREADS": "1" if threads else "0", **(one if threads == "all 1" else {})} for e in envs]
        servers = [serve(rec, minutes * 60)[0] for _ in range(n)]  # one broadcast each
        urls = [f"http://127.0.0.1:{s.server_address[1]}/live.ogg" for s in servers]
        results: list[list[dict]] = [[] for _ in range(n)]
        followers = [threading.Thread(target=lambda i=i: results[i].extend(follow(envs_now[i], urls[i], minutes * 60 + 20)))
                     for i in range(n)]
        for t in followers:
            t.start()
        for t in followers:
            t.join()
        for s in servers:
            s.shutdown()
        ends = [[e for e in r if e["type"] == "status"][-1] for r in results if any(e["type"] == "status" for e in r)]
        out.append({"streams": n, "torch_threads": threads or "default", "stream_seconds": [round(s["stream_time"], 1) for s in ends],
                    "cpu_share_each": [s["cpu_share"] for s in ends],
                    "kept_real_time": all(s["stream_time"] >= minutes * 60 - 3 for s in ends) and len(ends) == n})
        print(f"live {n} streams: {out[-1]}", file=sys.stderr)
    return out


def live_tables(result: dict) -> list[tuple[str, list[dict]]]:
    tables = []
    if result.get("against_scan"):
        tables.append(("live: against the offline scan, on the scan benchmark's recordings", [result["against_scan"]]))
    if result.get("long_run"):
        tables.append(("live: a long run, accelerated (memory)", [result["long_run"]]))
    if not result.get("runs"):
        return tables
    runs = [{k: v for k, v in r.items() if k != "latencies"} for r in result["runs"]]  # each detection's: in the JSON
    return tables + [("live: one stream at real-time pace", runs),
            ("live: streams at once (2 cores)", [{**r, "stream_seconds": " ".join(map(str, r["stream_seconds"])),
                                                  "cpu_share_each": " ".join(map(str, r["cpu_share_each"]))} for r in result["streams"]])]
