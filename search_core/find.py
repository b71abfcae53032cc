"""`find`: where one given sound occurs in a recording. No model and no library: the query's
template against the whole recording, block by block, through the verifier that `scan` uses."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .audio import AudioError, load_audio
from .recording import SILENCE_PEAK, Recording
from .scan import BLOCK_SECONDS, DEFAULT_THRESHOLD, ScanProgress, _check_threshold, _overlap
from .verifiers import FRAMES_PER_SECOND, RATE, make_verifier


@dataclass
class Match:
    start: float
    end: float
    score: float
    change: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "score": round(self.score, 4), **self.change}


@dataclass
class FindResult:
    query: str
    recording: str
    duration: float
    query_duration: float
    matches: list[Match]
    threshold: float

    def as_dict(self) -> dict:
        return {"query": self.query, "recording": self.recording, "duration": round(self.duration, 3),
                "query_duration": round(self.query_duration, 3), "threshold": self.threshold,
                "matches": [m.as_dict() for m in self.matches]}



def find(query: str | Path, recording: str | Path, settings, *, threshold: float = DEFAULT_THRESHOLD,
         query_name: str | None = None, recording_name: str | None = None, progress: ScanProgress | None = None) -> FindResult:
    """Every occurrence of one sound in a recording (no model, no library)."""
    threshold = _check_threshold(threshold)
    qname = query_name or Path(query).name
    clip = load_audio(query, RATE, max_seconds=settings.max_query_seconds, name=qname)
    verifier = make_verifier(settings.verifier)
    tpl = verifier.make_template(clip.samples)
    if tpl is None:
        raise AudioError(qname, "is silent (no sound above -80 dBFS); nothing to look for")
    rec = Recording(recording, name=recording_name, max_seconds=settings.max_scan_seconds)
    if clip.duration > rec.duration:
        raise AudioError(qname, f"is {clip.duration:.1f} s long, longer than the recording ({rec.duration:.1f} s); "
                                "find looks for a shorter sound inside a longer recording")
    found: list[Match] = []
    loudest = 0.0
    for block in rec.blocks((RATE,), BLOCK_SECONDS, 1.15 * (tpl.length + tpl.lead) + 0.5):
        loudest = max(loudest, block.peak)
        if block.peak < SILENCE_PEAK:
            continue
        feats = verifier.features(block.audio[RATE])
        limit = verifier.frames(feats) - tpl.frames
        for hit in verifier.hits(tpl, feats, 0, limit, threshold) if limit >= 0 else []:
            onset = block.offset + hit.position / FRAMES_PER_SECOND - tpl.lead * hit.scale
            at = onset + tpl.lead * hit.scale
            if block.start <= at < block.end or (block.end >= rec.duration and at >= block.start):
                found.append(Match(max(0.0, onset), min(rec.duration, onset + clip.duration * hit.scale), hit.score, hit.change()))
        if progress:
            progress(block.end, rec.duration)
    if loudest < SILENCE_PEAK:
        raise AudioError(rec.name, "is silent (no sound above -80 dBFS); nothing to search in")
    kept: list[Match] = []
    for m in sorted(found, key=lambda m: -m.score):
        if not any(_overlap(m, k) > 0.5 * (m.end - m.start) for k in kept):
            kept.append(m)
    return FindResult(qname, rec.name, rec.duration, clip.duration, sorted(kept, key=lambda m: m.start), threshold)
