"""The library's items: play a clip by id, stats, health, delete an item, clear the library."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from .deps import ServiceDep, Token
from .models import Deleted, Error, Health, Stats

router = APIRouter()


@router.get("/audio/{item_id}", name="audio", responses={404: {"model": Error}}, response_class=FileResponse,
            summary="Stream a library clip by its id")
def audio(service: ServiceDep, item_id: str):
    found = service.media.audio_for_id(item_id)
    if not found:
        raise HTTPException(404, "no playable clip with that id")
    path, row = found
    return FileResponse(path, filename=f"{row['name']}{path.suffix}")


@router.get("/stats", response_model=Stats, summary="Model, collection, count and per-label counts")
def stats(service: ServiceDep) -> Stats:
    s = service.stats()
    return Stats(**{k: s[k] for k in Stats.model_fields})


@router.delete("/items/{item_id}", response_model=Deleted, responses={401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error}},
               summary="Delete one library item by id")
def delete_item(service: ServiceDep, item_id: str, token: Token) -> Deleted:
    service.access.require_destroy(token)
    if len(item_id) > 80 or service.library.get(item_id) is None:
        raise HTTPException(404, "no item with that id")
    return Deleted(deleted=service.delete(item_id, token))


@router.delete("/library", response_model=Deleted, responses={401: {"model": Error}, 403: {"model": Error}},
               summary="Delete every item of the library")
def clear(service: ServiceDep, token: Token) -> Deleted:
    service.access.require_destroy(token)
    n = service.library.count()
    service.clear(token)
    return Deleted(deleted=n)


@router.get("/health", response_model=Health, summary="Liveness, with the model and library size")
def health(service: ServiceDep) -> Health:
    lib = service.library
    return Health(status="ok", model=lib.model, count=lib.count())
