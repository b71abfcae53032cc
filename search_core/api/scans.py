"""Moments in recordings: scan a recording for library sounds (a background job) and find one
sound in a recording."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from ..audio import AudioError
from ..scan import DEFAULT_THRESHOLD
from .deps import ServiceDep, audio_url, save_upload
from .models import ERRORS, Detection, Error, FindResponse, ScanReport, ScanStarted, ScanStatus

router = APIRouter()


@router.post("/scan", response_model=ScanStarted, status_code=202, responses={**ERRORS, 409: {"model": Error}},
             summary="Upload a long recording: find every library sound inside it, with times (a background job)")
def scan(
    request: Request,
    service: ServiceDep,
    file: Annotated[UploadFile, File(description="the recording (wav, flac, ogg, mp3, ...)")],
    threshold: Annotated[float, Form(gt=0, le=1, description="correlation a detection needs")] = DEFAULT_THRESHOLD,
) -> ScanStarted:
    tmp = Path(tempfile.mkdtemp(prefix="scan-", dir=service.files.request_dir()))
    try:
        with service.files.in_use(tmp):  # then the job holds it until it ends
            path = save_upload(file, tmp, service.settings.max_upload_bytes)
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
def scan_status(request: Request, service: ServiceDep, job_id: str) -> ScanStatus:
    job = service.jobs.get(job_id)
    if job is None or job.kind != "scan":
        raise HTTPException(404, "unknown scan job id (or finished long ago: results are kept for a while, then forgotten)")
    result = None
    if job.report is not None:
        dets = [Detection(**d, audio_url=audio_url(request, service, d["id"], d["path"])) for d in job.report["detections"]]
        result = ScanReport(**{**job.report, "detections": dets})
    return ScanStatus(id=job.id, state=job.state, done=job.done, total=job.total, result=result, error=job.error)


@router.post("/find", response_model=FindResponse, responses=ERRORS,
             summary="Where does this sound occur in this recording? (no library needed)")
def find_in(
    service: ServiceDep,
    query: Annotated[UploadFile, File(description="the sound to look for")],
    recording: Annotated[UploadFile, File(description="the recording to look in")],
    threshold: Annotated[float, Form(gt=0, le=1)] = DEFAULT_THRESHOLD,
) -> FindResponse:
    limit = service.settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="find-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
        q = save_upload(query, Path(tmp), limit)
        r = save_upload(recording, Path(tmp), limit)
        result = service.find(q, r, threshold, Path(query.filename or "query").name[:200], Path(recording.filename or "recording").name[:200])
    return FindResponse(**result.as_dict())
