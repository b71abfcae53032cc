"""Stream monitors (operator only: a monitor makes the server fetch a URL): start one on a URL,
list them, follow one's events as Server-Sent Events, read its category counts, stop it."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from ..monitor.manager import MonitorLimit
from .deps import ServiceDep, Token
from .models import ERRORS, Error, MonitorInfo, MonitorStart

router = APIRouter()
KEEPALIVE = 15.0  # seconds between comments on a quiet stream (proxies close idle connections)


def _running(service, monitor_id: str):
    try:
        return service.monitors.get(monitor_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None


@router.post("/monitors", response_model=MonitorInfo, status_code=201, responses={**ERRORS, 401: {"model": Error}, 403: {"model": Error},
             409: {"model": Error}}, summary="Start following a stream URL (operator)")
def start_monitor(service: ServiceDep, token: Token, body: MonitorStart) -> MonitorInfo:
    service.access.require_monitor(token)
    try:
        return MonitorInfo(**service.monitors.start(body.url, body.threshold))
    except MonitorLimit as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/monitors", response_model=list[MonitorInfo], responses={401: {"model": Error}, 403: {"model": Error}},
            summary="The monitors and their state (operator)")
def list_monitors(service: ServiceDep, token: Token) -> list[MonitorInfo]:
    service.access.require_monitor(token)
    return [MonitorInfo(**m) for m in service.monitors.list()]


@router.get("/monitors/{monitor_id}", response_model=MonitorInfo, responses={401: {"model": Error}, 403: {"model": Error},
            404: {"model": Error}}, summary="One monitor's state (operator)")
def monitor_info(service: ServiceDep, token: Token, monitor_id: str) -> MonitorInfo:
    service.access.require_monitor(token)
    return MonitorInfo(**_running(service, monitor_id).info())


@router.get("/monitors/{monitor_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "one `data:` JSON line per event"},
                       401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error}},
            summary="A monitor's events as Server-Sent Events (detection, sound, status, gap), from the last 2000 kept")
async def monitor_events(request: Request, service: ServiceDep, token: Token, monitor_id: str, after: int = 0,
                         last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    service.access.require_monitor(token)
    _running(service, monitor_id)
    if last_event_id and last_event_id.isdigit():  # a reconnecting EventSource resumes where it was
        after = max(after, int(last_event_id))

    async def stream():
        seen = after
        while not await request.is_disconnected():
            try:
                events, done = await asyncio.to_thread(service.monitors.events, monitor_id, seen, KEEPALIVE)
            except KeyError:  # stopped and forgotten
                return
            for n, event in events:
                seen = n
                yield f"id: {n}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
            if done:
                return
            if not events:
                yield ": keepalive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/monitors/{monitor_id}/categories.csv", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}}, 401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error}},
            summary="Sound events per category, per minute of the stream and in total (operator)")
def monitor_categories(service: ServiceDep, token: Token, monitor_id: str) -> PlainTextResponse:
    service.access.require_monitor(token)
    csv = _running(service, monitor_id).monitor.counts.to_csv()
    return PlainTextResponse(csv, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{monitor_id}-categories.csv"'})


@router.delete("/monitors/{monitor_id}", response_model=MonitorInfo, responses={401: {"model": Error}, 403: {"model": Error},
               404: {"model": Error}}, summary="Stop a monitor (operator)")
def stop_monitor(service: ServiceDep, token: Token, monitor_id: str) -> MonitorInfo:
    service.access.require_monitor(token)
    _running(service, monitor_id)
    return MonitorInfo(**service.monitors.stop(monitor_id))
