"""Who may do what on this server, and what a visitor may read in an error.

Permission rules (a hosted demo is public):
- read (search, stats, play a library clip, the map): always open;
- index the bundled sample set: always allowed (idempotent, only adds known files);
- write (index the visitor's own files): needs the operator token when one is set, is refused in
  public mode without one, and is open on a private/local run;
- monitor (follow a stream URL: the server fetches it): as write;
- destroy (delete an item, clear the library): needs the token when one is set, else
  SOUNDALIKE_ADMIN=1; refused otherwise.
"""
from __future__ import annotations

import hmac
from pathlib import Path

from .settings import Settings


class PermissionDenied(Exception):
    """The caller may not do this here; the message says how an operator enables it."""


class Access:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _token_ok(self, token: str | None) -> bool:
        expected = self.settings.admin_token
        return bool(expected) and token is not None and hmac.compare_digest(token.encode(), expected.encode())

    def can_write(self, token: str | None = None) -> bool:
        if self.settings.admin_token:
            return self._token_ok(token)
        return not self.settings.public

    def can_destroy(self, token: str | None = None) -> bool:
        if self.settings.admin_token:
            return self._token_ok(token)
        return self.settings.admin

    def require_write(self, token: str | None = None) -> None:
        if not self.can_write(token):
            raise PermissionDenied(
                "Adding files is disabled on this public demo. The operator can allow it with "
                "SOUNDALIKE_ADMIN_TOKEN (and send it as a bearer token)."
            )

    def require_monitor(self, token: str | None = None) -> None:
        if not self.can_write(token):
            raise PermissionDenied(
                "Monitoring a stream makes the server fetch a URL, so only the operator may start or read one here. "
                "The operator can allow it with SOUNDALIKE_ADMIN_TOKEN (and send it as a bearer token)."
            )

    def require_destroy(self, token: str | None = None) -> None:
        if not self.can_destroy(token):
            raise PermissionDenied(
                "Deleting is disabled. The operator can enable it with SOUNDALIKE_ADMIN=1 or SOUNDALIKE_ADMIN_TOKEN."
            )

    def server_paths(self) -> tuple[str, ...]:
        """The paths a public demo never shows (its data folder and library file)."""
        s = self.settings
        return (str(s.data_dir), str(Path(s.data_dir).resolve()), s.uri if s.is_lite else "")

    def visible_error(self, exc: BaseException) -> str:
        """An error's message as a visitor may see it (no server paths on a public demo)."""
        from .status import redact_paths

        return redact_paths(str(exc), self.server_paths()) if self.settings.public else str(exc)
