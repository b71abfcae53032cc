"""Where live audio comes from: a file (at real-time pace for demos and tests, or as fast as it
decodes), stdin, a network stream (Icecast/HTTP MP3, OGG, AAC, an HLS playlist) or a microphone,
each as mono float32 chunks at SOURCE_RATE.

A microphone (`mic`, or `mic:DEVICE`) is captured by ffmpeg's own input devices, so no audio
library is added: PulseAudio where a Pulse server runs, else ALSA on Linux (device `default`),
AVFoundation on macOS (`:0`), DirectShow on Windows (`audio=NAME`: name the device). A machine
with no sound device gets a clear message, not a retry loop.

Network streams and stdin are decoded by ffmpeg: the `ffmpeg` on PATH when there is one (Debian's
`ffmpeg` package, kept up to date by the system), else the static binary of the `imageio-ffmpeg`
wheel (a requirement, so a plain `pip install` can decode streams with no system package).
A network stream that drops is opened again with backoff (1, 2, 4 ... 30 s); each gap is reported,
and a transient error never ends the monitor.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio import AudioError
from .live import SOURCE_RATE

CHUNK_SECONDS = 0.25
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


@dataclass
class Gap:
    """The stream was lost for `seconds` (wall time) before it came back; `reason` says why."""

    seconds: float
    reason: str


def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        raise AudioError("stream", "needs ffmpeg to decode: install Debian's `ffmpeg` or the `imageio-ffmpeg` wheel") from None


def is_url(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def is_mic(spec: str) -> bool:
    return spec == "mic" or spec.startswith("mic:")


def mic_input(spec: str) -> list[str]:
    """ffmpeg's arguments that open the microphone `spec` names on this system."""
    import os
    import sys

    device = spec[4:] if spec.startswith("mic:") else ""
    if sys.platform == "darwin":
        return ["-f", "avfoundation", "-i", device or ":0"]
    if sys.platform.startswith("win"):
        if not device:
            raise AudioError("mic", "needs a device name on Windows: mic:NAME (ffmpeg -list_devices true -f dshow -i dummy lists them)")
        return ["-f", "dshow", "-i", f"audio={device}"]
    pulse = os.environ.get("PULSE_SERVER") or Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "pulse", "native").exists()
    return ["-f", "pulse" if pulse else "alsa", "-i", device or "default"]


def open_source(spec: str, *, realtime: bool = False, stop: threading.Event | None = None) -> Iterator[np.ndarray | Gap]:
    """The chunks (and gaps) of a source: a file path, "-" for stdin, an http(s) URL, or `mic[:DEVICE]`."""
    stop = stop or threading.Event()
    if spec == "-":
        return _ffmpeg_chunks("pipe:0", stop, stdin=True)
    if is_mic(spec):
        return _ffmpeg_chunks(spec, stop, stdin=False)
    if is_url(spec):
        return _network(spec, stop)
    return _file(Path(spec), realtime, stop)


def _file(path: Path, realtime: bool, stop: threading.Event) -> Iterator[np.ndarray]:
    from ..audio import resample
    from ..recording import Recording

    rec = Recording(path)
    began = time.monotonic()
    at = 0.0
    while at < rec.duration and not stop.is_set():
        end = min(rec.duration, at + 10.0)
        block = resample(rec.read(at, end), rec.rate, SOURCE_RATE)
        step = int(CHUNK_SECONDS * SOURCE_RATE)
        for i in range(0, len(block), step):
            if stop.is_set():
                return
            chunk = block[i : i + step]
            if realtime:  # the chunk's last sample is due at its stream time
                due = began + at + (i + len(chunk)) / SOURCE_RATE
                time.sleep(max(0.0, due - time.monotonic()))
            yield chunk
        at = end


def _network(url: str, stop: threading.Event) -> Iterator[np.ndarray | Gap]:
    """A network stream, opened again whenever it ends or fails, with backoff; never raises for
    a transient failure (only `stop` ends it)."""
    failures = 0
    lost: float | None = None
    reason = ""
    while not stop.is_set():
        got = False
        try:
            for chunk in _ffmpeg_chunks(url, stop, stdin=False):
                if lost is not None:
                    yield Gap(time.monotonic() - lost, reason)
                    lost = None
                got, failures = True, 0
                yield chunk
            reason = "the stream ended"
        except AudioError as exc:
            reason = exc.reason
        if stop.is_set():
            return
        if lost is None:
            lost = time.monotonic()
        wait = BACKOFF[min(failures, len(BACKOFF) - 1)] if not got else BACKOFF[0]
        failures += 1
        stop.wait(wait)


def _ffmpeg_chunks(source: str, stop: threading.Event, *, stdin: bool) -> Iterator[np.ndarray]:
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"] if not stdin else [ffmpeg_exe(), "-hide_banner", "-loglevel", "error"]
    if is_url(source):
        # ffmpeg reads network streams with its own timeouts; a dead server ends it (then we back off)
        # and only network protocols: a playlist cannot make it read the server's own files
        args += ["-rw_timeout", "15000000", "-protocol_whitelist", "http,https,tcp,tls,crypto"]
    args += mic_input(source) if is_mic(source) else ["-i", source]
    args += ["-vn", "-ac", "1", "-ar", str(SOURCE_RATE), "-f", "f32le", "pipe:1"]
    proc = subprocess.Popen(args, stdin=None if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def end_on_stop() -> None:  # a read waiting on a silent stream ends as soon as the monitor stops
        while proc.poll() is None:
            if stop.wait(0.2):
                proc.kill()
                return

    threading.Thread(target=end_on_stop, name="ffmpeg-stop", daemon=True).start()
    said: deque[str] = deque(maxlen=5)  # ffmpeg's last words, read as they come (a full pipe would stall it)
    threading.Thread(target=lambda: said.extend(line.decode(errors="replace").strip() for line in proc.stderr),
                     name="ffmpeg-stderr", daemon=True).start()
    size = int(CHUNK_SECONDS * SOURCE_RATE) * 4
    left = b""  # a sample split between two reads
    try:
        while not stop.is_set():
            # what ffmpeg has decoded, up to a chunk: waiting for a whole chunk would hold the end of
            # a stream's page (the newest audio) until the next page arrives
            data = proc.stdout.read1(size)
            if not data:
                break
            data, usable = left + data, len(left) + len(data) - (len(left) + len(data)) % 4
            left = data[usable:]
            if usable:
                yield np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode not in (0, None, -9) and not stop.is_set():
        time.sleep(0.1)  # its last line
        why = said[-1] if said else "ffmpeg failed"
        if is_mic(source):
            raise AudioError(source, f"no microphone could be opened (ffmpeg {' '.join(mic_input(source))}: {why})")
        raise AudioError(source if not stdin else "stdin", f"could not be decoded ({why})")
