"""The REST API's request and response shapes (their field descriptions are the API docs)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from ..scan import DEFAULT_THRESHOLD


class Tag(BaseModel):
    label: str = Field(description="an AudioSet class")
    p: float = Field(description="the model's probability for it, 0-1")


class SearchHit(BaseModel):
    rank: int
    name: str
    label: str
    score: float = Field(description="cosine similarity in [0, 1]; higher is closer")
    percentile: float | None = Field(None, description="how the score ranks among pairs of the library's own sounds, 0-100 "
                                     "(99: only 1% of pairs are as alike); null for a library of one sound")
    duration: float
    tags: list[Tag] | None = Field(None, description="what the model hears in this sound, top first; only for models that "
                                   "name classes (PANNs: AudioSet)")
    start: float = Field(description="start (s) of the part of the clip that matched best (long clips are stored as segments)")
    end: float = Field(description="end (s) of that part")
    id: str
    audio_url: str | None = Field(description="GET this to play the clip; null when the file is not served")


class SuggestedLabel(BaseModel):
    label: str
    confidence: float = Field(description="the label's share of the similarity-weighted vote of the nearest labelled sounds, 0-1")
    votes: int = Field(description="neighbours with this label")
    neighbours: int = Field(description="labelled neighbours that voted")


class SearchResponse(BaseModel):
    model: str
    collection: str
    query_tags: list[Tag] | None = Field(None, description="what the model hears in the query (PANNs only)")
    suggested_label: SuggestedLabel | None = Field(None, description="the category the nearest sounds suggest; null when they are unlabelled or split")
    results: list[SearchHit]


class DupeItem(BaseModel):
    id: str
    name: str
    label: str
    duration: float
    sample_rate: int
    path: str | None = Field(None, description="the file on the server (left out on a public demo)")
    audio_url: str | None


class DupeGroup(BaseModel):
    score: float = Field(description="the weakest pair's waveform correlation in the group, 0-1")
    items: list[DupeItem] = Field(description="the suggested keeper first (lossless, indexed first, highest sample rate, shortest name)")


class Contained(BaseModel):
    score: float = Field(description="the clip's waveform correlation at its place in the longer file, rescaled against chance, 0-1")
    offset: float = Field(description="seconds into the longer file where the clip begins")
    clip: DupeItem = Field(description="the shorter file")
    within: DupeItem = Field(description="the longer file that holds it")


class DupesResponse(BaseModel):
    model: str
    collection: str
    threshold: float
    files: int
    groups: list[DupeGroup]
    contained: list[Contained] = Field(default_factory=list, description="library files that are a piece of a longer library file (never deleted as copies)")


class CopiesDeleted(BaseModel):
    deleted: int
    names: list[str]


class Stats(BaseModel):
    model: str
    model_note: str
    inference: str  # the forward pass that runs: torch, onnx, bf16, int8 (numpy for mfcc)
    dim: int
    collection: str
    count: int
    labels: dict[str, int]


class Rejected(BaseModel):
    file: str
    reason: str


class IndexStarted(BaseModel):
    job_id: str
    status_url: str
    accepted: int
    rejected: list[Rejected]


class JobStatus(BaseModel):
    id: str
    kind: str
    state: str
    done: int
    total: int
    current: str
    report: dict | None
    error: str | None


class Detection(BaseModel):
    start: float = Field(description="seconds into the recording")
    end: float
    score: float = Field(description="the verifier's score, 0-1 (the scan's threshold or more); README: what a score means")
    speed: float | None = Field(None, description="estimated playback speed of the occurrence against the library sound (1.05: 5 % faster)")
    pitch_semitones: float | None = Field(None, description="estimated pitch change, semitones")
    gain_db: float | None = Field(None, description="estimated level of the occurrence against the library sound, dB")
    channel: str | None = Field(None, description="\"telephone\" where the match was made within 300-3400 Hz only (a band-limited copy, or other sound covering its lows and highs); \"room\" where the waveform matched as the library sound through a short response (reverb, or a filter), at the original speed and pitch")
    margin: float | None = Field(None, description="score minus the best score of another library sound at the same moment")
    id: str
    name: str
    label: str
    path: str
    clip_start: float = Field(description="where in the library sound the matched part begins")
    duration: float = Field(description="the library sound's duration")
    audio_url: str | None = Field(description="GET this to play the library sound")


class SoundEvent(BaseModel):
    """A sound event and the library category it most likely is (library sound or not)."""
    start: float
    end: float
    label: str
    probability: float
    tags: list[Tag] | None = None


class MinuteCounts(BaseModel):
    minute: int
    counts: dict[str, int]


class CategoryCounts(BaseModel):
    total: dict[str, int] = Field(description="sound events per category, most frequent first")
    per_minute: list[MinuteCounts]


class ScanReport(BaseModel):
    model: str
    collection: str
    recording: str
    duration: float
    threshold: float
    detections: list[Detection]
    sounds: list[SoundEvent] = Field(default_factory=list, description="every sound event's likely category")
    categories: CategoryCounts | None = None


class MonitorStart(BaseModel):
    url: str = Field(description="an http(s) stream: Icecast/MP3/OGG/AAC, an HLS playlist")
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, le=1, description="as for scan")


class MonitorInfo(BaseModel):
    id: str
    source: str
    state: str = Field(description="starting, running, stopped, ended or failed")
    started: float = Field(description="Unix time")
    stream_time: float = Field(description="seconds of the stream heard")
    detections: int
    gaps: int
    categories: dict[str, int]
    configured: bool = Field(description="started from SOUNDALIKE_MONITORS (comes back when the app restarts)")
    error: str | None = None


class ScanStarted(BaseModel):
    job_id: str
    status_url: str
    duration: float = Field(description="the recording's duration, seconds")


class ScanStatus(BaseModel):
    id: str
    state: str = Field(description="queued | running | done | failed")
    done: float = Field(description="seconds of the recording scanned")
    total: float
    result: ScanReport | None
    error: str | None


class FindMatch(BaseModel):
    start: float
    end: float
    score: float
    speed: float | None = None
    pitch_semitones: float | None = None
    gain_db: float | None = None
    channel: str | None = None


class FindResponse(BaseModel):
    query: str
    recording: str
    duration: float
    query_duration: float
    threshold: float
    matches: list[FindMatch]


class Deleted(BaseModel):
    deleted: int


class Health(BaseModel):
    status: str
    model: str
    count: int


class Error(BaseModel):
    detail: str


ERRORS = {400: {"model": Error}, 413: {"model": Error}, 415: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}}
