"""Long recordings, streamed: blocks of a file at the rates the caller needs, never the whole file.

A one-hour recording is ~600 MB as float32 at 44.1 kHz; a scan only ever needs a block of it and a
margin on each side (for windows and templates that straddle the block's edges). Formats that
libsndfile reads (wav, flac, ogg, mp3, ...) are read by seeking; others (m4a, webm) are decoded
whole once (within the length limit).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from .audio import MIN_SOURCE_RATE, SILENCE_PEAK, AudioError, _decode_fallback, resample, to_mono



@dataclass
class Block:
    """Audio of [start - margin, end + margin] (clipped to the file) at each requested rate.
    `start`/`end` is the part this block is responsible for; `offset` is where its audio begins."""

    start: float
    end: float
    offset: float
    audio: dict[int, np.ndarray]  # rate -> mono float32
    peak: float


class Recording:
    """A recording opened for streaming, with its checks done up front (size, length, format)."""

    def __init__(self, path: str | Path, *, name: str | None = None, max_seconds: float | None = None,
                 max_bytes: int | None = None, min_seconds: float = 0.0):
        self.path = Path(path)
        self.name = name or self.path.name
        if not self.path.is_file():
            raise AudioError(self.name, "file not found")
        size = self.path.stat().st_size
        if size == 0:
            raise AudioError(self.name, "file is empty (0 bytes)")
        if max_bytes is not None and size > max_bytes:
            raise AudioError(self.name, f"file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.1f} MB")
        self._whole: np.ndarray | None = None
        try:
            info = sf.info(str(self.path))
            self.rate, frames = int(info.samplerate), int(info.frames)
            if frames <= 0:
                raise ValueError("unknown length")
        except Exception:
            try:  # formats libsndfile does not read: decode once, within the limit
                data, self.rate = _decode_fallback(self.path, max_seconds, self.name)
            except AudioError:
                raise
            except Exception:
                raise AudioError(self.name, "not a readable audio file (unknown format or corrupt data)") from None
            self._whole = to_mono(data, self.name)
            frames = len(self._whole)
        if self.rate < MIN_SOURCE_RATE:
            raise AudioError(self.name, f"sample rate {self.rate} Hz is not a usable audio rate")
        self.frames = frames
        self.duration = frames / self.rate
        if max_seconds is not None and self.duration > max_seconds:
            raise AudioError(self.name, f"is {self.duration / 60:.1f} min long; the limit for a recording is {max_seconds / 60:g} min "
                                        f"(SOUNDALIKE_MAX_SCAN_SECONDS={max_seconds:g})")
        if self.duration < min_seconds:
            raise AudioError(self.name, f"is {self.duration:.2f} s long; a recording must be at least {min_seconds:.1f} s "
                                        "(one analysis window) — use Search for short sounds")

    def read(self, start: float, end: float) -> np.ndarray:
        """Mono float32 at the source rate for [start, end] seconds (clipped to the file)."""
        a = max(0, int(round(start * self.rate)))
        b = min(self.frames, int(round(end * self.rate)))
        if b <= a:
            return np.zeros(0, dtype=np.float32)
        if self._whole is not None:
            return self._whole[a:b]
        try:
            with sf.SoundFile(str(self.path)) as f:
                f.seek(a)
                data = f.read(b - a, dtype="float32", always_2d=True)
        except Exception:
            raise AudioError(self.name, "could not be read past its start (corrupt data)") from None
        return to_mono(data, self.name) if data.size else np.zeros(0, dtype=np.float32)

    def blocks(self, rates: tuple[int, ...], block_seconds: float = 60.0, margin: float = 5.0) -> Iterator[Block]:
        """Consecutive blocks covering the recording, each with `margin` seconds of context."""
        start = 0.0
        while start < self.duration:
            end = min(self.duration, start + block_seconds)
            offset = max(0.0, start - margin)
            raw = self.read(offset, min(self.duration, end + margin))
            peak = float(np.max(np.abs(raw))) if raw.size else 0.0
            yield Block(start, end, offset, {r: resample(raw, self.rate, r) for r in rates}, peak)
            start = end

    def samples(self, rate: int) -> np.ndarray:
        """The whole recording at `rate` (for short recordings and tests)."""
        return resample(self.read(0.0, self.duration), self.rate, rate)
