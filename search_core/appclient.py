"""The CLI's way into a running app: its local endpoints (local_api.py), found by the app file.

Same methods and the same dicts as operations.Runner, so every command prints the same thing
whether it ran here or in the app. Long work (index, scan, dupes) runs as a job in the app; this
client polls it and feeds the progress bar.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from .appfile import APP_FILE, AppCard, card_for_url, library_key, read_card
from .local_api import SECRET_HEADER
from .settings import Settings

ProgressFn = Callable[[float, float, str], None]
POLL_SECONDS = 0.25


class AppError(RuntimeError):
    """The app could not be reached, or refused or failed the request; the message is for people."""


class AppClient:
    def __init__(self, url: str, secret: str, timeout: float = 300.0):
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers={SECRET_HEADER: secret}, timeout=timeout, trust_env=False)
        info = self._request("GET", "/api/local/hello", timeout=10)
        self.model: str = info["model"]
        self.collection: str = info["collection"]
        self.note: str = info.get("model_note") or ""
        self.library: str = info["library"]
        self.pid: int = int(info["pid"])

    @classmethod
    def for_library(cls, settings: Settings) -> "AppClient | None":
        """The running app that serves this library, from the card in the data folder; None when
        there is no (trustworthy) card, or its app is gone or serves another library."""
        card = read_card(settings.data_dir)
        if card is None or card.library != library_key(settings):
            return None
        try:
            client = cls(card.url, card.secret)
        except AppError:
            return None
        return client if client.library == card.library else None

    @classmethod
    def at(cls, url: str, settings: Settings) -> "AppClient":
        """An app named by the user (`--app URL`): its secret from $SOUNDALIKE_APP_SECRET, else from
        the card this user's app left under its URL."""
        secret = settings.app_secret
        if not secret:
            card: AppCard | None = card_for_url(url)
            secret = card.secret if card else None
        if not secret:
            raise AppError(
                f"No app card for {url}: the app at that URL was not started by this user on this machine (or has stopped). "
                f"Its secret is in {APP_FILE} in that app's data folder; pass it with SOUNDALIKE_APP_SECRET.")
        return cls(url, secret)

    # -- transport --------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> dict:
        import httpx

        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AppError(f"Cannot reach the app at {self.url} ({exc})") from None
        try:
            body = r.json()
        except ValueError:
            body = {"detail": r.text[:300]}
        if r.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else body
            if isinstance(detail, list):  # a validation error
                detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
            # the app's own refusals say where they come from; errors of the request read as here
            raise AppError(f"{detail} (the app at {self.url} answered {r.status_code})" if r.status_code in (401, 403, 404, 405) else str(detail))
        return body

    def _wait(self, job_id: str, progress: ProgressFn | None) -> dict:
        shown = None
        try:
            while True:
                job = self._request("GET", f"/api/local/jobs/{job_id}", timeout=30)
                now = (job["done"], job["total"], job.get("current") or "")
                if progress and now != shown:
                    progress(*now)
                    shown = now
                if job["state"] == "done":
                    return job["report"]
                if job["state"] == "failed":
                    raise AppError(job["error"] or "the job failed")
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            raise AppError(f"Stopped waiting; the app at {self.url} finishes the job on its own.") from None

    # -- the operations -----------------------------------------------------------------------------
    def stats(self) -> dict:
        return self._request("GET", "/api/local/stats")

    def count(self) -> int:
        return int(self.stats()["count"])

    def search(self, file: str | None = None, item_id: str | None = None, top_k: int = 5,
               label: str | None = None, max_duration: float | None = None) -> dict:
        body = {"file": _absolute(file) if file else None, "id": item_id, "top_k": top_k, "label": label, "max_duration": max_duration}
        return self._request("POST", "/api/local/search", json=body)

    def index(self, paths: Sequence[str], label: str | None = None, progress: ProgressFn | None = None) -> dict:
        job = self._request("POST", "/api/local/index", json={"paths": [_absolute(p) for p in paths], "label": label})
        return self._wait(job["job_id"], progress)

    def delete(self, ids: Sequence[str] = (), path: str | None = None) -> dict:
        return self._request("POST", "/api/local/delete", json={"ids": list(ids), "path": path})

    def scan(self, recording: str, threshold: float, progress: ProgressFn | None = None) -> dict:
        job = self._request("POST", "/api/local/scan", json={"recording": _absolute(recording), "threshold": threshold})
        return self._wait(job["job_id"], progress)

    def dupes(self, threshold: float, delete_copies: bool = False, progress: ProgressFn | None = None) -> dict:
        job = self._request("POST", "/api/local/dupes", json={"threshold": threshold, "delete_copies": delete_copies})
        return self._wait(job["job_id"], progress)

    def where(self) -> str:
        return f"through the app at {self.url}"


def _absolute(path: str) -> str:
    """The app runs in its own working folder: send paths as this shell means them."""
    return str(Path(path).expanduser().absolute())
