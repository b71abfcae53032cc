"""Visitors' uploads made safe: each file checked by decoding it, zips expanded within limits,
and accepted audio stored under its content hash in the upload folder (never the visitor's name)."""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .audio import AUDIO_EXTENSIONS, AudioError, load_audio, require_sound
from .settings import Settings

FORMAT_EXT = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff", "AU": ".au", "CAF": ".caf", "W64": ".w64", "RF64": ".wav"}


@dataclass
class Upload:
    stored: Path  # under settings.upload_dir, generated name
    name: str  # the visitor's file name (stem), for display


def safe_stem(name: str) -> str:
    stem = Path(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return re.sub(r"[^\w\- ]+", "_", stem).strip()[:80] or "upload"


class Uploads:
    def __init__(self, settings: Settings, scratch: Callable[[], Path]):
        self.settings = settings
        self.scratch = scratch  # a folder the sweeper knows, for zip members while they are checked

    def ingest(self, files: Iterable[tuple[str, Path]]) -> tuple[list[Upload], list[tuple[str, str]]]:
        """Check each (original name, temp path) by content, expand zips, and store accepted audio
        under generated names in the upload folder. Returns (uploads, rejected with reasons)."""
        Path(self.settings.upload_dir).mkdir(parents=True, exist_ok=True)
        accepted: list[Upload] = []
        rejected: list[tuple[str, str]] = []
        for original, path in files:
            display = Path(str(original).replace("\\", "/")).name or "upload"
            path = Path(path)
            try:
                if zipfile.is_zipfile(path):
                    a, r = self._ingest_zip(display, path)
                    accepted += a
                    rejected += r
                else:
                    accepted.append(self._store(display, path))
            except AudioError as exc:
                rejected.append((display, exc.reason))
        return accepted, rejected

    def _ingest_zip(self, display: str, path: Path) -> tuple[list[Upload], list[tuple[str, str]]]:
        accepted, rejected = [], []
        limit = self.settings.max_upload_bytes
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                if len(members) > self.settings.max_zip_members:
                    return [], [(display, f"zip holds {len(members)} files; the limit is {self.settings.max_zip_members}")]
                for m in members:
                    inner = Path(m.filename.replace("\\", "/")).name
                    if not inner or inner.startswith(".") or Path(inner).suffix.lower() not in AUDIO_EXTENSIONS:
                        continue
                    if m.file_size > limit:
                        rejected.append((inner, f"file is {m.file_size / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB"))
                        continue
                    try:
                        accepted.append(self._member(zf, m, inner, limit))
                    except AudioError as exc:
                        rejected.append((inner, exc.reason))
        except (zipfile.BadZipFile, OSError) as exc:
            rejected.append((display, f"not a readable zip file ({exc})"))
        return accepted, rejected

    def _member(self, zf: zipfile.ZipFile, m: zipfile.ZipInfo, inner: str, limit: int) -> Upload:
        """One zip member copied out (stopping zip bombs at the size limit), then checked and stored."""
        with tempfile.TemporaryDirectory(dir=self.scratch()) as tmp:
            target = Path(tmp) / "member"
            with zf.open(m) as src, target.open("wb") as dst:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if copied > limit:
                        raise AudioError(inner, "file is larger than the upload limit")
                    dst.write(chunk)
            return self._store(inner, target)

    def _store(self, display: str, path: Path) -> Upload:
        """Content check (decodes the file), then copy to <upload_dir>/<sha256><ext>."""
        require_sound(load_audio(path, 16000, max_seconds=self.settings.max_index_seconds, max_bytes=self.settings.max_upload_bytes, name=display))
        ext = _extension(path, display)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        stored = Path(self.settings.upload_dir).resolve() / f"{digest}{ext}"
        if not stored.exists():
            shutil.copyfile(path, stored)
        return Upload(stored, safe_stem(display))


def _extension(path: Path, display: str) -> str:
    import soundfile as sf

    try:
        return FORMAT_EXT.get(sf.info(str(path)).format, ".wav")
    except Exception:
        ext = Path(display).suffix.lower()
        return ext if ext in AUDIO_EXTENSIONS else ".audio"
