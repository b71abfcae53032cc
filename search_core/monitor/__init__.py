"""Live monitoring: follow a stream, a file played at real-time pace, or stdin, and report library
sounds as they happen (`python -m search_core monitor SOURCE`).

- `live.py`    — LiveScanner: the scan's two stages run every half second over the newest audio.
- `sources.py` — the audio: files, stdin, network streams (ffmpeg), reconnecting with backoff.
- `runner.py`  — Monitor: a source through a LiveScanner, events out to sinks (JSON lines, a webhook).
- `manager.py` — Monitors: the app's stream monitors (REST), their events kept for SSE readers.
- `sessions.py` — LiveSessions: visitors' microphone sessions in the app's Live tab, with limits.
- `command.py` — the `monitor` subcommand.
"""
from .live import LiveScanner
from .runner import Monitor, print_sink, webhook_sink

__all__ = ["LiveScanner", "Monitor", "print_sink", "webhook_sink"]
