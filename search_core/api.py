"""REST API (FastAPI) beside the UI: thin calls into the Service, JSON errors with the right status.

Nothing here takes a server path from a request: clips are streamed by id, uploads are stored
under generated names, filters are typed values.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
import pandas as pd
from pydantic import BaseModel, Field

from .audio import AudioError
from .embedders import ModelUnavailable
from .local_api import local_router
from .scan import DEFAULT_THRESHOLD
from .service import Busy, PermissionDenied, Service
from .store import StoreError


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


class DupesResponse(BaseModel):
    model: str
    collection: str
    threshold: float
    files: int
    groups: list[DupeGroup]


class CopiesDeleted(BaseModel):
    deleted: int
    names: list[str]


class Stats(BaseModel):
    model: str
    model_note: str
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
    margin: float | None = Field(None, description="score minus the best score of another library sound at the same moment")
    id: str
    name: str
    label: str
    path: str
    clip_start: float = Field(description="where in the library sound the matched part begins")
    duration: float = Field(description="the library sound's duration")
    audio_url: str | None = Field(description="GET this to play the library sound")


class ScanReport(BaseModel):
    model: str
    collection: str
    recording: str
    duration: float
    threshold: float
    detections: list[Detection]


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


def audio_status(exc: AudioError) -> int:
    if exc.reason.startswith("not a readable audio file"):
        return 415
    if "MB; the limit" in exc.reason or "larger than the upload limit" in exc.reason:
        return 413
    return 400


def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def create_api(service: Service) -> FastAPI:
    app = FastAPI(
        title="Soundalike API",
        description="Audio similarity search: upload a sound, get the most similar clips of the library.",
        version="1.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    router = APIRouter(prefix="/api")
    settings = service.settings
    limit = settings.max_upload_bytes

    @app.exception_handler(AudioError)
    async def _audio(_: Request, exc: AudioError):
        return JSONResponse({"detail": service.access.visible_error(exc)}, status_code=audio_status(exc))

    @app.exception_handler(ModelUnavailable)
    async def _model(_: Request, exc: ModelUnavailable):
        return JSONResponse({"detail": service.access.visible_error(exc)}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError):
        status = 409 if isinstance(exc, Busy) or "Another indexing job" in str(exc) else 503
        return JSONResponse({"detail": service.access.visible_error(exc)}, status_code=status)

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError):
        return JSONResponse({"detail": service.access.visible_error(exc)}, status_code=400)

    @app.exception_handler(PermissionDenied)
    async def _denied(_: Request, exc: PermissionDenied):
        if settings.admin_token:
            return JSONResponse({"detail": "A valid operator token is required (Authorization: Bearer <token>)."},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse({"detail": str(exc)}, status_code=403)

    def save_upload(upload: UploadFile, folder: Path) -> Path:
        """Stream to a generated temp name, refusing anything over the size limit (413)."""
        target = folder / f"upload-{len(list(folder.iterdir()))}"
        size = 0
        with target.open("wb") as out:
            while chunk := upload.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"{Path(upload.filename or 'upload').name}: file is larger than the limit of {limit / 2**20:.1f} MB")
                out.write(chunk)
        return target

    def audio_url(request: Request, item_id: str, path: str) -> str | None:
        return str(request.url_for("audio", item_id=item_id)) if service.media.playable(path) else None

    @router.post("/search", response_model=SearchResponse, responses=ERRORS, summary="Find the library clips most similar to an uploaded sound")
    def search(
        request: Request,
        file: Annotated[UploadFile, File(description="the query sound (wav, flac, ogg, mp3, ...)")],
        top_k: Annotated[int, Form(ge=1, le=100)] = 5,
        label: Annotated[str | None, Form(max_length=512)] = None,
        max_duration: Annotated[float | None, Form(gt=0, le=86400)] = None,
    ) -> SearchResponse:
        with tempfile.TemporaryDirectory(prefix="q-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
            path = save_upload(file, Path(tmp))
            name = Path(file.filename or "query").name[:200] or "query"
            if path.stat().st_size == 0:
                raise HTTPException(400, f"{name}: file is empty (0 bytes)")
            try:
                result = service.similar(path, top_k, label or None, max_duration)
            except AudioError as exc:
                raise AudioError(name, exc.reason) from None
        return search_response(request, result)

    def search_response(request: Request, result) -> SearchResponse:
        lib = service.library
        hits = [
            SearchHit(rank=int(r.rank), name=r.name, label=r.label, score=float(r.score),
                      percentile=None if pd.isna(r.percentile) else float(r.percentile), duration=float(r.duration), tags=r.tags or None,
                      start=float(r.start), end=float(r.end), id=r.id, audio_url=audio_url(request, r.id, r.path))
            for r in result.frame.itertuples()
        ]
        sug = result.suggestion
        return SearchResponse(model=lib.model, collection=lib.collection, results=hits, query_tags=result.query_tags,
                              suggested_label=SuggestedLabel(**sug.as_dict()) if sug else None)

    @router.get("/items/{item_id}/similar", response_model=SearchResponse, responses={400: {"model": Error}, 404: {"model": Error}, 503: {"model": Error}},
                summary="More like this: the library items nearest to a stored item (its stored vector; nothing is re-embedded)")
    def similar(request: Request, item_id: str, top_k: Annotated[int, Query(ge=1, le=100)] = 5) -> SearchResponse:
        try:
            result = service.similar_by_id(item_id, top_k)
        except KeyError:
            raise HTTPException(404, "no item with that id") from None
        return search_response(request, result)

    @router.get("/dupes", response_model=DupesResponse, responses={400: {"model": Error}, 503: {"model": Error}},
                summary="Groups of library files that are the same sound in different versions (re-encoded, resampled, trimmed, ...)")
    def dupes(request: Request, threshold: Annotated[float | None, Query(gt=0, le=1)] = None) -> DupesResponse:
        result = service.dupes(threshold)
        lib = service.library
        groups = [
            DupeGroup(score=round(g.score, 4), items=[
                DupeItem(id=it["id"], name=it["name"], label=it["label"], duration=float(it["duration"]), sample_rate=int(it["sample_rate"] or 0),
                         path=None if settings.public else it["path"], audio_url=audio_url(request, it["id"], it["path"]))
                for it in g.items])
            for g in result.groups
        ]
        return DupesResponse(model=lib.model, collection=lib.collection, threshold=result.threshold, files=result.files, groups=groups)

    @router.delete("/dupes/copies", response_model=CopiesDeleted, responses={401: {"model": Error}, 403: {"model": Error}},
                   summary="Delete every copy but the suggested keeper of each duplicate group (operator only)")
    def delete_copies(threshold: Annotated[float | None, Query(gt=0, le=1)] = None, token: str | None = Depends(bearer)) -> CopiesDeleted:
        n, names = service.delete_copies(threshold, token)
        return CopiesDeleted(deleted=n, names=names)

    @router.get("/audio/{item_id}", name="audio", responses={404: {"model": Error}}, response_class=FileResponse,
                summary="Stream a library clip by its id")
    def audio(item_id: str):
        found = service.media.audio_for_id(item_id)
        if not found:
            raise HTTPException(404, "no playable clip with that id")
        path, row = found
        return FileResponse(path, filename=f"{row['name']}{path.suffix}")

    @router.post("/index", response_model=IndexStarted, status_code=202, responses={**ERRORS, 401: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}},
                 summary="Upload files (or a zip) and index them in the background")
    def index(
        request: Request,
        files: Annotated[list[UploadFile], File(description="audio files or zip archives")],
        label: Annotated[str | None, Form(max_length=100)] = None,
        token: str | None = Depends(bearer),
    ) -> IndexStarted:
        service.access.require_write(token)
        with tempfile.TemporaryDirectory(prefix="up-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
            saved = [(f.filename or "upload", save_upload(f, Path(tmp))) for f in files]
            uploads, rejected = service.uploads.ingest(saved)
        if not uploads:
            raise HTTPException(415, "no audio found in the upload: " + "; ".join(f"{n}: {r}" for n, r in rejected)[:500])
        job = service.jobs.start(lambda progress: service.index_uploads(uploads, label, progress))
        return IndexStarted(job_id=job.id, status_url=str(request.url_for("index_status", job_id=job.id)),
                            accepted=len(uploads), rejected=[Rejected(file=n, reason=r) for n, r in rejected])

    @router.post("/index/sample", response_model=IndexStarted, status_code=202, responses={409: {"model": Error}},
                 summary="Index the bundled game-sound set in the background (idempotent)")
    def index_sample(request: Request) -> IndexStarted:
        job = service.jobs.start(service.index_sample)
        return IndexStarted(job_id=job.id, status_url=str(request.url_for("index_status", job_id=job.id)), accepted=0, rejected=[])

    @router.get("/index/{job_id}", name="index_status", response_model=JobStatus, responses={404: {"model": Error}},
                summary="Progress and report of an indexing job")
    def index_status(job_id: str) -> JobStatus:
        job = service.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "unknown job id (or finished long ago: reports are kept for a while, then forgotten)")
        return JobStatus(**job.as_dict())

    @router.post("/scan", response_model=ScanStarted, status_code=202, responses={**ERRORS, 409: {"model": Error}},
                 summary="Upload a long recording: find every library sound inside it, with times (a background job)")
    def scan(
        request: Request,
        file: Annotated[UploadFile, File(description="the recording (wav, flac, ogg, mp3, ...)")],
        threshold: Annotated[float, Form(gt=0, le=1, description="correlation a detection needs")] = DEFAULT_THRESHOLD,
    ) -> ScanStarted:
        tmp = Path(tempfile.mkdtemp(prefix="scan-", dir=service.files.request_dir()))
        try:
            with service.files.in_use(tmp):  # then the job holds it until it ends
                path = save_upload(file, tmp)
                name = Path(file.filename or "recording").name[:200] or "recording"
                try:
                    duration = service.check_recording(path, name)
                except AudioError as exc:
                    raise AudioError(name, exc.reason) from None
                if service.library.count() == 0:
                    raise HTTPException(409, "The library is empty: index some sounds first.")
                job = service.jobs.start(lambda progress: service.scan(path, threshold, name, progress).as_dict(service.library.model, service.library.collection),
                                        kind="scan", cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True), uses=tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ScanStarted(job_id=job.id, status_url=str(request.url_for("scan_status", job_id=job.id)), duration=round(duration, 3))

    @router.get("/scan/{job_id}", name="scan_status", response_model=ScanStatus, responses={404: {"model": Error}},
                summary="Progress of a scan, and its detections when done")
    def scan_status(request: Request, job_id: str) -> ScanStatus:
        job = service.jobs.get(job_id)
        if job is None or job.kind != "scan":
            raise HTTPException(404, "unknown scan job id (or finished long ago: results are kept for a while, then forgotten)")
        result = None
        if job.report is not None:
            dets = [Detection(**d, audio_url=audio_url(request, d["id"], d["path"])) for d in job.report["detections"]]
            result = ScanReport(**{**job.report, "detections": dets})
        return ScanStatus(id=job.id, state=job.state, done=job.done, total=job.total, result=result, error=job.error)

    @router.post("/find", response_model=FindResponse, responses=ERRORS,
                 summary="Where does this sound occur in this recording? (no library needed)")
    def find_in(
        query: Annotated[UploadFile, File(description="the sound to look for")],
        recording: Annotated[UploadFile, File(description="the recording to look in")],
        threshold: Annotated[float, Form(gt=0, le=1)] = DEFAULT_THRESHOLD,
    ) -> FindResponse:
        with tempfile.TemporaryDirectory(prefix="find-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
            q = save_upload(query, Path(tmp))
            r = save_upload(recording, Path(tmp))
            result = service.find(q, r, threshold, Path(query.filename or "query").name[:200], Path(recording.filename or "recording").name[:200])
        return FindResponse(**result.as_dict())

    @router.get("/stats", response_model=Stats, summary="Model, collection, count and per-label counts")
    def stats() -> Stats:
        s = service.stats()
        return Stats(**{k: s[k] for k in Stats.model_fields})

    @router.delete("/items/{item_id}", response_model=Deleted, responses={401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error}},
                   summary="Delete one library item by id")
    def delete_item(item_id: str, token: str | None = Depends(bearer)) -> Deleted:
        service.access.require_destroy(token)
        if len(item_id) > 80 or service.library.get(item_id) is None:
            raise HTTPException(404, "no item with that id")
        return Deleted(deleted=service.delete(item_id, token))

    @router.delete("/library", response_model=Deleted, responses={401: {"model": Error}, 403: {"model": Error}},
                   summary="Delete every item of the library")
    def clear(token: str | None = Depends(bearer)) -> Deleted:
        service.access.require_destroy(token)
        n = service.library.count()
        service.clear(token)
        return Deleted(deleted=n)

    @router.get("/health", response_model=Health, summary="Liveness, with the model and library size")
    def health() -> Health:
        lib = service.library
        return Health(status="ok", model=lib.model, count=lib.count())

    app.include_router(router)
    app.include_router(local_router(service))
    return app
