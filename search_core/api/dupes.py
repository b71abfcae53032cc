"""GET /api/dupes (groups of the same sound in different versions) and deleting the extra copies."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from .deps import ServiceDep, Token, audio_url
from .models import Contained, CopiesDeleted, DupeGroup, DupeItem, DupesResponse, Error

router = APIRouter()


@router.get("/dupes", response_model=DupesResponse, responses={400: {"model": Error}, 503: {"model": Error}},
            summary="Groups of library files that are the same sound in different versions (re-encoded, resampled, trimmed, ...)")
def dupes(request: Request, service: ServiceDep, threshold: Annotated[float | None, Query(gt=0, le=1)] = None) -> DupesResponse:
    result = service.dupes(threshold)
    lib = service.library
    public = service.settings.public

    def item(it: dict) -> DupeItem:
        return DupeItem(id=it["id"], name=it["name"], label=it["label"], duration=float(it["duration"]), sample_rate=int(it["sample_rate"] or 0),
                        path=None if public else it["path"], audio_url=audio_url(request, service, it["id"], it["path"]))

    groups = [DupeGroup(score=round(g.score, 4), items=[item(it) for it in g.items]) for g in result.groups]
    contained = [Contained(score=round(c.score, 4), offset=round(c.offset, 3), clip=item(c.clip), within=item(c.within))
                 for c in result.contained]
    return DupesResponse(model=lib.model, collection=lib.collection, threshold=result.threshold, files=result.files,
                         groups=groups, contained=contained)


@router.delete("/dupes/copies", response_model=CopiesDeleted, responses={401: {"model": Error}, 403: {"model": Error}},
               summary="Delete every copy but the suggested keeper of each duplicate group (operator only)")
def delete_copies(service: ServiceDep, token: Token, threshold: Annotated[float | None, Query(gt=0, le=1)] = None) -> CopiesDeleted:
    n, names = service.delete_copies(threshold, token)
    return CopiesDeleted(deleted=n, names=names)
