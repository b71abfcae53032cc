"""The app's local endpoints: the CLI's commands, run by the app that holds the library file.

They take paths on this machine (folders to index in place, query files, recordings), so they are
the operator's alone: a request is answered only when it comes from loopback and carries the
app's secret (`X-Soundalike-Secret`, read from the owner-only app file, see appfile.py); anything
else gets 403 before a path is looked at. They are left out of the public API docs. Their answers
are the dicts of operations.py, the CLI's own JSON contracts.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field

from .service import Service

SECRET_HEADER = "X-Soundalike-Secret"


class SearchRequest(BaseModel):
    file: str | None = Field(None, max_length=4096)
    id: str | None = Field(None, max_length=80)
    top_k: int = Field(5, ge=1, le=100)
    label: str | None = Field(None, max_length=512)
    max_duration: float | None = Field(None, gt=0)


class IndexRequest(BaseModel):
    paths: list[Annotated[str, Field(max_length=4096)]] = Field(min_length=1)
    label: str | None = Field(None, max_length=100)


class DeleteRequest(BaseModel):
    ids: list[Annotated[str, Field(max_length=80)]] = []
    path: str | None = Field(None, max_length=4096)


class ScanRequest(BaseModel):
    recording: str = Field(max_length=4096)
    threshold: float = Field(gt=0, le=1)


class DupesRequest(BaseModel):
    threshold: float = Field(gt=0, le=1)
    delete_copies: bool = False


def is_loopback(host: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def local_router(service: Service) -> APIRouter:
    def operator(request: Request, secret: Annotated[str | None, Header(alias=SECRET_HEADER)] = None) -> None:
        if not is_loopback(request.client.host if request.client else None):
            raise HTTPException(403, "Local endpoints answer only requests from this machine.")
        if not secret or not hmac.compare_digest(secret.encode(), service.local_secret.encode()):
            raise HTTPException(403, "Local endpoints need this app's secret (the CLI reads it from the app file "
                                     "in the app's data folder, which only the user who started the app can read).")

    router = APIRouter(prefix="/api/local", dependencies=[Depends(operator)], include_in_schema=False)

    def started(job) -> dict:
        return {"job_id": job.id}

    @router.get("/hello")
    def hello() -> dict:
        from .appfile import library_key

        lib = service.library
        return {"pid": os.getpid(), "library": library_key(service.settings), "model": lib.model,
                "collection": lib.collection, "model_note": lib.embedder.note}

    @router.get("/stats")
    def stats() -> dict:
        return service.stats()

    @router.post("/search")
    def search(req: SearchRequest) -> dict:
        from . import operations

        return operations.search(service.library, req.file, req.id, req.top_k, req.label, req.max_duration)

    @router.post("/index", status_code=202)
    def index(req: IndexRequest) -> dict:
        service.library
        return started(service.jobs.start(lambda progress: service.index_paths(req.paths, req.label, progress)))

    @router.post("/delete")
    def delete(req: DeleteRequest) -> dict:
        return service.delete_local(req.ids, req.path)

    @router.post("/scan", status_code=202)
    def scan(req: ScanRequest) -> dict:
        service.check_recording(req.recording, req.recording)
        return started(service.jobs.start(lambda progress: service.scan_local(req.recording, req.threshold, progress), kind="scan"))

    @router.post("/dupes", status_code=202)
    def dupes(req: DupesRequest) -> dict:
        service.library
        return started(service.jobs.start(lambda progress: service.dupes_local(req.threshold, req.delete_copies, progress), kind="dupes"))

    @router.get("/jobs/{job_id}")
    def job(job_id: str) -> dict:
        found = service.jobs.get(job_id)
        if found is None:
            raise HTTPException(404, "unknown job id")
        return found.as_dict()

    return router
