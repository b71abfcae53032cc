"""Indexing jobs: upload files (or a zip) to index, index the bundled set, follow a job."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from .deps import ServiceDep, Token, save_upload
from .models import ERRORS, Error, IndexStarted, JobStatus, Rejected

router = APIRouter()


@router.post("/index", response_model=IndexStarted, status_code=202, responses={**ERRORS, 401: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}},
             summary="Upload files (or a zip) and index them in the background")
def index(
    request: Request,
    service: ServiceDep,
    files: Annotated[list[UploadFile], File(description="audio files or zip archives")],
    token: Token,
    label: Annotated[str | None, Form(max_length=100)] = None,
) -> IndexStarted:
    service.access.require_write(token)
    with tempfile.TemporaryDirectory(prefix="up-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
        saved = [(f.filename or "upload", save_upload(f, Path(tmp), service.settings.max_upload_bytes)) for f in files]
        uploads, rejected = service.uploads.ingest(saved)
    if not uploads:
        raise HTTPException(415, "no audio found in the upload: " + "; ".join(f"{n}: {r}" for n, r in rejected)[:500])
    job = service.jobs.start(lambda progress: service.index_uploads(uploads, label, progress))
    return IndexStarted(job_id=job.id, status_url=str(request.url_for("index_status", job_id=job.id)),
                        accepted=len(uploads), rejected=[Rejected(file=n, reason=r) for n, r in rejected])


@router.post("/index/sample", response_model=IndexStarted, status_code=202, responses={409: {"model": Error}},
             summary="Index the bundled game-sound set in the background (idempotent)")
def index_sample(request: Request, service: ServiceDep) -> IndexStarted:
    job = service.jobs.start(service.index_sample)
    return IndexStarted(job_id=job.id, status_url=str(request.url_for("index_status", job_id=job.id)), accepted=0, rejected=[])


@router.get("/index/{job_id}", name="index_status", response_model=JobStatus, responses={404: {"model": Error}},
            summary="Progress and report of an indexing job")
def index_status(service: ServiceDep, job_id: str) -> JobStatus:
    job = service.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, "unknown job id (or finished long ago: reports are kept for a while, then forgotten)")
    return JobStatus(**job.as_dict())
