"""REST API (FastAPI) beside the UI: thin calls into the Service, JSON errors with the right status.

Nothing here takes a server path from a request: clips are streamed by id, uploads are stored
under generated names, filters are typed values. One router per resource, as in FastAPI's layout
for bigger applications:
- `search.py`   — search by a sound, more like an item;
- `library.py`  — play a clip, stats, health, delete an item, clear;
- `indexing.py` — indexing jobs;
- `scans.py`    — scan a recording, find a sound in one;
- `dupes.py`    — near-duplicate groups, delete the extra copies;
- `monitors.py` — stream monitors: start, list, follow (Server-Sent Events), counts, stop;
- `models.py`, `deps.py`, `errors.py` — the shapes, the shared dependencies, the error statuses.
The operator's local endpoints (the CLI through a running app) are `search_core/local_api.py`.
"""
from __future__ import annotations

from fastapi import FastAPI

from ..local_api import local_router
from ..service import Service
from . import dupes, indexing, library, monitors, scans, search
from .errors import add_error_handlers

__all__ = ["create_api"]


def create_api(service: Service) -> FastAPI:
    app = FastAPI(
        title="Soundalike API",
        description="Audio similarity search: upload a sound, get the most similar clips of the library.",
        version="1.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.service = service  # what every route's ServiceDep reads
    add_error_handlers(app, service)
    for module in (search, dupes, library, indexing, scans, monitors):
        app.include_router(module.router, prefix="/api")
    app.include_router(local_router(service))
    return app
