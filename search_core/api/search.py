"""POST /api/search (a sound finds its nearest library clips) and GET /api/items/{id}/similar."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile

from ..audio import AudioError
from ..service import Service
from .deps import ServiceDep, audio_url, save_upload
from .models import ERRORS, Error, SearchHit, SearchResponse, SuggestedLabel

router = APIRouter()


@router.post("/search", response_model=SearchResponse, responses=ERRORS, summary="Find the library clips most similar to an uploaded sound")
def search(
    request: Request,
    service: ServiceDep,
    file: Annotated[UploadFile, File(description="the query sound (wav, flac, ogg, mp3, ...)")],
    top_k: Annotated[int, Form(ge=1, le=100)] = 5,
    label: Annotated[str | None, Form(max_length=512)] = None,
    max_duration: Annotated[float | None, Form(gt=0, le=86400)] = None,
) -> SearchResponse:
    with tempfile.TemporaryDirectory(prefix="q-", dir=service.files.request_dir()) as tmp, service.files.in_use(tmp):
        path = save_upload(file, Path(tmp), service.settings.max_upload_bytes)
        name = Path(file.filename or "query").name[:200] or "query"
        if path.stat().st_size == 0:
            raise HTTPException(400, f"{name}: file is empty (0 bytes)")
        try:
            result = service.similar(path, top_k, label or None, max_duration)
        except AudioError as exc:
            raise AudioError(name, exc.reason) from None
    return search_response(request, service, result)


@router.get("/items/{item_id}/similar", response_model=SearchResponse, responses={400: {"model": Error}, 404: {"model": Error}, 503: {"model": Error}},
            summary="More like this: the library items nearest to a stored item (its stored vector; nothing is re-embedded)")
def similar(request: Request, service: ServiceDep, item_id: str, top_k: Annotated[int, Query(ge=1, le=100)] = 5) -> SearchResponse:
    try:
        result = service.similar_by_id(item_id, top_k)
    except KeyError:
        raise HTTPException(404, "no item with that id") from None
    return search_response(request, service, result)


def search_response(request: Request, service: Service, result) -> SearchResponse:
    lib = service.library
    hits = [
        SearchHit(rank=int(r.rank), name=r.name, label=r.label, score=float(r.score),
                  percentile=None if pd.isna(r.percentile) else float(r.percentile), duration=float(r.duration), tags=r.tags or None,
                  start=float(r.start), end=float(r.end), id=r.id, audio_url=audio_url(request, service, r.id, r.path))
        for r in result.frame.itertuples()
    ]
    sug = result.suggestion
    return SearchResponse(model=lib.model, collection=lib.collection, results=hits, query_tags=result.query_tags,
                          suggested_label=SuggestedLabel(**sug.as_dict()) if sug else None)
