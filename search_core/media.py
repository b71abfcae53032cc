"""Which audio files a visitor may hear: only files inside a media root (the sample set, the
upload folder, the operator's SOUNDALIKE_MEDIA_DIRS), never any other server path; and excerpts
of them for players that cannot seek by themselves."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable

from .settings import Settings


class Media:
    def __init__(self, settings: Settings, library: Callable[[], object], excerpt_dir: Path):
        self.settings = settings
        self.library = library  # the open Library (raises while it loads)
        self.excerpt_dir = excerpt_dir

    @property
    def sample_dir(self) -> Path:
        return Path(self.settings.sample_dir).resolve()

    def roots(self) -> list[Path]:
        roots = [self.sample_dir, Path(self.settings.upload_dir).resolve()]
        roots += [Path(p).resolve() for p in self.settings.media_dirs]
        return roots

    def playable(self, path: str) -> Path | None:
        """The file for a stored path, only if it lies inside a media root (never anything else)."""
        try:
            p = Path(path).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not p.is_file():
            return None
        for root in self.roots():
            if p.is_relative_to(root):
                return p
        return None

    def audio_for_id(self, item_id: str) -> tuple[Path, dict] | None:
        if not re.fullmatch(r"[0-9a-f]{64}", item_id or ""):
            return None
        row = self.library().get(item_id)
        if row is None:
            return None
        path = self.playable(row["path"])
        return (path, row) if path else None

    def matched_part(self, path: str, clip_start: float, seconds: float, duration: float | None) -> Path | None:
        """The playable library sound of a detection, cut to the part that matched when that is not
        all of it (a segment of a long sound); None when it may not be played."""
        clip = self.playable(path)
        if clip and duration and seconds < duration - 0.05:
            clip = self.excerpt(clip, clip_start, clip_start + seconds)
        return clip

    def excerpt(self, path: str | Path, start: float, end: float, *, keep: int = 256) -> Path:
        """A WAV of [start, end] seconds of an audio file, for players that cannot seek by themselves.
        Written to a temp folder of this process; the oldest beyond `keep` are removed (bounded disk)."""
        import soundfile as sf

        from .recording import Recording

        key = hashlib.sha256(f"{Path(path).resolve()}|{start:.3f}|{end:.3f}".encode()).hexdigest()[:24]
        out = self.excerpt_dir / f"{key}.wav"
        try:
            os.utime(out)  # reused: young again, so it is not swept before Gradio copies it
        except FileNotFoundError:
            pass
        if not out.exists():
            rec = Recording(path)
            self.excerpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".part")
            sf.write(str(tmp), rec.read(max(0.0, start), min(rec.duration, end)), rec.rate, format="WAV")
            tmp.replace(out)
            old = sorted(self.excerpt_dir.glob("*.wav"), key=lambda p: p.stat().st_mtime)
            for p in old[:-keep]:
                p.unlink(missing_ok=True)
        return out
