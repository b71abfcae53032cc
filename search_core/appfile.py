"""The running app's card in its data folder: where it listens, and the secret that proves a
caller is its operator.

Milvus Lite lets one process at a time open a library file, so while the app runs, the CLI works
through it. At start the app writes `<data folder>/.soundalike-app.json`, readable only by the
user who started it (mode 0600), holding its URL, a random 256-bit secret (new at every start), its
pid and the library it serves; it removes the file when it stops. A copy goes to a folder of the
user's own (`<system temp>/soundalike-apps-<uid>`, mode 0700), named by the URL, so that
`--app URL` finds an app started on another data folder. The CLI trusts a card only when its own
user owns it and nobody else can read it, and sends the secret with each request; the app's local
endpoints (local_api.py) answer only loopback requests that carry it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .settings import Settings

APP_FILE = ".soundalike-app.json"


@dataclass(frozen=True)
class AppCard:
    url: str
    secret: str
    pid: int
    library: str  # library_key() of the library the app serves
    started: float


def app_file(data_dir: Path) -> Path:
    return Path(data_dir) / APP_FILE


def library_key(settings: Settings) -> str:
    """Names one library across processes: the resolved Lite file, or the server URI."""
    return str(Path(settings.uri).resolve()) if settings.is_lite else settings.uri


def _private(path: Path) -> bool:
    """Ours alone: owned by this user, no access for anyone else, not a link (where supported)."""
    if not hasattr(os, "getuid"):
        return True
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077 and not stat.S_ISLNK(st.st_mode)


def cards_dir(create: bool = False) -> Path | None:
    """This user's folder of app cards by URL; None when it is missing or not private."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = Path(tempfile.gettempdir()) / f"soundalike-apps-{uid}"
    if create:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return None
    return folder if _private(folder) else None


def _url_card(url: str, create: bool = False) -> Path | None:
    folder = cards_dir(create)
    return folder / f"{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:16]}.json" if folder else None


def _write(path: Path, card: AppCard) -> None:
    """Atomically (a reader never sees half a file) and owner-only from the first byte."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(card), out)
    os.replace(tmp, path)


def _read(path: Path | None) -> AppCard | None:
    """The card, or None when there is none, it is malformed, or it cannot be trusted (another
    user's, or readable by others: then it may have been planted, or its secret has leaked)."""
    if path is None or not _private(path):
        return None
    try:
        d = json.loads(path.read_text())
        return AppCard(url=str(d["url"]), secret=str(d["secret"]), pid=int(d["pid"]), library=str(d["library"]),
                       started=float(d["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_card(settings: Settings, url: str, secret: str) -> Path:
    """The data folder's card (and the copy by URL, when the user's card folder can be had)."""
    path = app_file(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = AppCard(url=url, secret=secret, pid=os.getpid(), library=library_key(settings), started=time.time())
    _write(path, card)
    by_url = _url_card(url, create=True)
    if by_url is not None:
        _write(by_url, card)
    return path


def read_card(data_dir: Path) -> AppCard | None:
    """The card of the app serving this data folder's library, if one is trustworthy."""
    return _read(app_file(data_dir))


def card_for_url(url: str) -> AppCard | None:
    """The card of the app this user started at `url`, if any."""
    card = _read(_url_card(url))
    return card if card is not None and card.url.rstrip("/") == url.rstrip("/") else None


def remove_card(data_dir: Path, url: str, secret: str) -> None:
    """Removes the cards at shutdown, each only if it is still this app's (not a later app's)."""
    for path in (app_file(data_dir), _url_card(url)):
        card = _read(path)
        if path is not None and card is not None and card.secret == secret:
            path.unlink(missing_ok=True)
