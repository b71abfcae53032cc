"""What every tab shares: the header's status line, the refresh after the library changed (header,
empty-library banner, categories, the library table), and user errors shown as UI messages."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from ..access import PermissionDenied
from ..audio import AudioError
from ..embedders import ModelUnavailable
from ..service import Service
from ..store import StoreError

K_MAX = 20  # result slots on the search tab
ANY = "(any category)"
USER_ERRORS = (AudioError, ModelUnavailable, StoreError, PermissionDenied, ValueError)


def header_markdown(line: str, details: str) -> str:
    """The title, the status line, and the details collapsed under it (Markdown with an HTML details element)."""
    return f"# Soundalike\n{line}\n\n<details id='header-details'><summary>Details</summary>\n\n{details}\n\n</details>"


class Page:
    def __init__(self, service: Service):
        self.service = service

    def error(self, exc: BaseException) -> gr.Error:
        """A user error as a UI message (no server paths on a public demo)."""
        return gr.Error(self.service.access.visible_error(exc))

    def header_md(self) -> str:
        """One line a visitor reads at a glance; reasons and the operator's how-to collapsed below it."""
        st = self.service.status()
        return header_markdown(st.line, st.details)

    def refresh(self):
        """Header, empty-library banner, categories, library table, and whether to poll again
        (while the model loads)."""
        st = self.service.status()
        header = header_markdown(st.line, st.details)
        if not st.ready:
            return header, gr.update(visible=False), gr.update(choices=[ANY]), pd.DataFrame(), gr.Timer(active=st.state == "loading")
        table = pd.DataFrame({"category": list(st.labels), "sounds": list(st.labels.values())})
        return header, gr.update(visible=st.count == 0), gr.update(choices=[ANY, *st.labels]), table, gr.Timer(active=False)


class Tab:
    """A tab's handlers: the service they call and the page they refresh."""

    def __init__(self, service: Service, page: Page):
        self.service = service
        self.page = page

    def error(self, exc: BaseException) -> gr.Error:
        return self.page.error(exc)
