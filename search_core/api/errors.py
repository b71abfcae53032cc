"""Errors as JSON with the status that says what happened (no server paths on a public demo)."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..access import PermissionDenied
from ..audio import AudioError
from ..embedders import ModelUnavailable
from ..jobs import Busy
from ..service import Service
from ..store import StoreError


def audio_status(exc: AudioError) -> int:
    if exc.reason.startswith("not a readable audio file"):
        return 415
    if "MB; the limit" in exc.reason or "larger than the upload limit" in exc.reason:
        return 413
    return 400


def add_error_handlers(app: FastAPI, service: Service) -> None:
    def visible(exc: BaseException, status: int) -> JSONResponse:
        return JSONResponse({"detail": service.access.visible_error(exc)}, status_code=status)

    @app.exception_handler(AudioError)
    async def _audio(_: Request, exc: AudioError):
        return visible(exc, audio_status(exc))

    @app.exception_handler(ModelUnavailable)
    async def _model(_: Request, exc: ModelUnavailable):
        return visible(exc, 503)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError):
        return visible(exc, 409 if isinstance(exc, Busy) or "Another indexing job" in str(exc) else 503)

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError):
        return visible(exc, 400)

    @app.exception_handler(PermissionDenied)
    async def _denied(_: Request, exc: PermissionDenied):
        if service.settings.admin_token:
            return JSONResponse({"detail": "A valid operator token is required (Authorization: Bearer <token>)."},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse({"detail": str(exc)}, status_code=403)
