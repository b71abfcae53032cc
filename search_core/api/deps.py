"""What every router needs: the Service (from the app's state), the operator's bearer token,
uploads streamed to disk within the size limit, and a clip's URL when it may be played."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, UploadFile

from ..service import Service


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


Token = Annotated[str | None, Depends(bearer)]


def save_upload(upload: UploadFile, folder: Path, limit: int) -> Path:
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


def audio_url(request: Request, service: Service, item_id: str, path: str) -> str | None:
    return str(request.url_for("audio", item_id=item_id)) if service.media.playable(path) else None
