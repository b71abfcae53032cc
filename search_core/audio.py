"""Audio in: decode any supported file (or array) to mono float32 at a model's sample rate.

Everything that can go wrong with user audio surfaces here as one error type, `AudioError`,
whose message names the file and the reason, so front ends can show it as-is.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# Extensions the indexer picks up when walking folders. Decoding itself sniffs content.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".m4a", ".aac", ".webm"}
)
MIN_SOURCE_RATE = 1000  # below this a "sample rate" is a broken header, not sound
SILENCE_PEAK = 1e-4  # -80 dBFS: audio whose every sample is under this is silence (16-bit dither is below it)


class AudioError(ValueError):
    """Input that cannot be used as audio; the message is meant for people."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass
class Clip:
    """Decoded audio, mono float32 at `sample_rate`, plus what we learnt about the source."""

    samples: np.ndarray
    sample_rate: int
    duration: float  # seconds of real audio, before any padding
    source_rate: int
    channels: int
    name: str


def _fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def to_mono(samples: np.ndarray, source: str) -> np.ndarray:
    """Any numeric array (frames,), (frames, channels) -> float32 mono in [-1, 1] range."""
    a = np.asarray(samples)
    if a.size == 0:
        raise AudioError(source, "contains no audio samples")
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        scale = float(max(abs(info.min), info.max))
        a = a.astype(np.float32) / scale
    elif not np.issubdtype(a.dtype, np.floating):
        raise AudioError(source, f"unsupported sample type {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        # Gradio hands (frames, channels); guard the rare (channels, frames) layout too.
        if a.shape[0] < a.shape[1] and a.shape[0] <= 8:
            a = a.T
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise AudioError(source, f"expected 1-D or 2-D audio, got shape {a.shape}")
    finite = np.isfinite(a)
    if not finite.any():
        raise AudioError(source, "contains no valid samples (every sample is NaN or infinite): the file is corrupt")
    if not finite.all():  # a few bad samples (a damaged float file): zero them
        a = np.where(finite, a, np.float32(0.0))
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if peak > 1.0:  # float files may exceed full scale; keep it peak-safe
        a = a / peak
    return np.ascontiguousarray(a, dtype=np.float32)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return samples
    import librosa

    return librosa.resample(samples, orig_sr=source_rate, target_sr=target_rate, res_type="soxr_hq").astype(
        np.float32, copy=False
    )


def prepare(
    samples: np.ndarray,
    source_rate: int,
    target_rate: int,
    *,
    name: str = "audio",
    max_seconds: float | None = None,
) -> Clip:
    """Array in (e.g. a microphone recording) -> Clip at the target rate, with the same checks as files."""
    source_rate = int(source_rate)
    if source_rate < MIN_SOURCE_RATE:
        raise AudioError(name, f"sample rate {source_rate} Hz is not a usable audio rate")
    a = np.asarray(samples)
    frames = a.shape[0] if a.ndim >= 1 else 0
    if a.ndim == 2 and a.shape[0] < a.shape[1] and a.shape[0] <= 8:
        frames = a.shape[1]
    duration = frames / source_rate
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(name, f"is {duration:.1f} s long; the limit is {max_seconds:g} s")
    channels = 1 if a.ndim == 1 else min(a.shape)
    mono = to_mono(a, name)
    return Clip(resample(mono, source_rate, target_rate), target_rate, duration, source_rate, channels, name)


def _decode_soundfile(path: Path, max_seconds: float | None, name: str) -> tuple[np.ndarray, int]:
    info = sf.info(str(path))
    if info.samplerate < MIN_SOURCE_RATE:
        raise AudioError(name, f"sample rate {info.samplerate} Hz is not a usable audio rate")
    if max_seconds is not None and info.frames > 0 and info.frames / info.samplerate > max_seconds:
        raise AudioError(name, f"is {info.frames / info.samplerate:.1f} s long; the limit is {max_seconds:g} s")
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, rate


def _decode_fallback(path: Path, max_seconds: float | None, name: str) -> tuple[np.ndarray, int]:
    """Formats libsndfile does not read (m4a/aac, some webm): librosa via audioread/ffmpeg."""
    import librosa

    limit = None if max_seconds is None else max_seconds + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, rate = librosa.load(str(path), sr=None, mono=False, duration=limit)
    data = np.atleast_2d(data).T  # librosa gives (channels, frames)
    if max_seconds is not None and data.shape[0] / rate > max_seconds:
        raise AudioError(name, f"is longer than the limit of {max_seconds:g} s")
    return data, int(rate)


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
    name: str | None = None,
) -> Clip:
    """Decode a file to mono float32 at `sample_rate`, or raise AudioError saying why not."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise AudioError(name, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(name, "file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise AudioError(name, f"file is {_fmt_mb(size)}; the limit is {_fmt_mb(max_bytes)}")
    try:
        data, rate = _decode_soundfile(path, max_seconds, name)
    except AudioError:
        raise
    except Exception:
        try:
            data, rate = _decode_fallback(path, max_seconds, name)
        except AudioError:
            raise
        except Exception:
            # libsndfile's own wording is often misleading (and names server paths): say it plainly.
            raise AudioError(name, "not a readable audio file (unknown format or corrupt data)") from None
    if data.shape[0] == 0:
        raise AudioError(name, "contains no audio samples")
    return prepare(data, rate, sample_rate, name=name, max_seconds=max_seconds)


def require_sound(clip: Clip) -> Clip:
    """Refuse silence: a silent query or library file would only ever return (or be) an arbitrary
    neighbour, so the person is told instead."""
    peak = float(np.max(np.abs(clip.samples))) if clip.samples.size else 0.0
    if peak < SILENCE_PEAK:
        raise AudioError(clip.name, "is silent (no sound above -80 dBFS): there is nothing to compare")
    return clip


def pad_to_seconds(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """Zero-pad (centred) clips shorter than a model's minimum input."""
    need = int(np.ceil(seconds * sample_rate))
    if samples.shape[0] >= need:
        return samples
    extra = need - samples.shape[0]
    left = extra // 2
    return np.pad(samples, (left, extra - left))
