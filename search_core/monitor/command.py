"""`python -m search_core monitor SOURCE`: the monitor on the command line (its parser and its run)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..audio import AudioError
from ..embedders import MODEL_NAMES


def add_parser(sub, open_library: Callable) -> None:
    """The `monitor` subcommand; `open_library(args)` opens the library the CLI's options name."""
    from ..scan import DEFAULT_THRESHOLD

    sp = sub.add_parser("monitor", help="follow a live SOURCE and print each library sound as it happens (JSON lines)")
    sp.add_argument("source", help="an audio file, - for audio on stdin, an http(s) stream URL (Icecast, HLS, ...), "
                                   "or mic (mic:DEVICE) for a microphone")
    sp.add_argument("--realtime", action="store_true", help="play a file at real-time pace (demos, latency tests)")
    sp.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"as for scan (default {DEFAULT_THRESHOLD})")
    sp.add_argument("--webhook", metavar="URL", help="also POST each detection to URL as JSON")
    sp.add_argument("--counts-csv", metavar="FILE", help="keep FILE a CSV of the sound categories heard per minute (rewritten at each status line)")
    sp.add_argument("--status-every", type=float, default=10.0, metavar="S", help="seconds between status lines (default 10)")
    sp.add_argument("--model", choices=("auto", *MODEL_NAMES), help="embedding model (default: $SOUNDALIKE_MODEL or auto)")
    sp.add_argument("--collection", help="Milvus collection (default: <library>__<model>)")
    sp.add_argument("--uri", help="Milvus URI (default: $MILVUS_URI or the Lite file in $SOUNDALIKE_DATA_DIR)")
    sp.set_defaults(func=lambda args: run(args, open_library))


def run(args, open_library: Callable) -> int:
    """Follow SOURCE; one JSON line per event (see monitor/runner.py). Ctrl-C ends it cleanly."""
    import signal

    from .runner import Monitor, print_sink, webhook_sink
    from ..scan import Scanner

    from .sources import is_mic

    if args.source != "-" and "://" not in args.source and not is_mic(args.source) and not Path(args.source).is_file():
        raise AudioError(args.source, "file not found (SOURCE is a file, - for stdin, an http(s) URL, or mic)")
    sinks = [print_sink()] + ([webhook_sink(args.webhook)] if args.webhook else [])
    monitor = Monitor(Scanner(open_library(args)), args.source, realtime=args.realtime, threshold=args.threshold,
                      status_every=args.status_every, sinks=sinks, counts_csv=args.counts_csv)
    # Ctrl-C and SIGTERM end the current step, then the monitor (a KeyboardInterrupt in the middle of
    # a store call could leave Milvus Lite's in-process server locked at exit)
    signal.signal(signal.SIGTERM, lambda *_: monitor.stop.set())
    signal.signal(signal.SIGINT, lambda *_: monitor.stop.set())
    try:
        monitor.run()
    except KeyboardInterrupt:
        monitor.stop.set()
        monitor.state = "stopped"
        monitor.emit(monitor.status())
        monitor.close()
    return 0
