"""The Gradio UI's event handlers, one module per tab; `app.py` lays the tabs out and wires these.

- `page.py`         — what every tab shares: the header's status line, the refresh after a change,
                      user errors as UI messages.
- `search_tab.py`   — search by a sound, "more like this", the result players.
- `scan_tab.py`     — scan a recording (or find one sound in it), the timeline and moment players.
- `indexing_tab.py` — index the bundled set or uploads, delete, clear, near-duplicates.
- `map_tab.py`      — the library map and playing a clicked point.
- `live_tab.py`     — the microphone followed live, and the operator's stream monitors.

Each handler is a thin call into `search_core.service.Service`: classes rather than closures so
tests call every handler directly with real audio.
"""
from __future__ import annotations

from ..service import Service
from .indexing_tab import IndexingTab
from .live_tab import LiveTab
from .map_tab import MapTab
from .page import ANY, K_MAX, USER_ERRORS, Page
from .scan_tab import ScanTab
from .search_tab import SearchTab

__all__ = ["Handlers", "ANY", "K_MAX", "USER_ERRORS"]


class Handlers:
    """Every tab's handlers over one Service."""

    def __init__(self, service: Service):
        self.service = service
        self.page = Page(service)
        self.search_tab = SearchTab(service, self.page)
        self.scan_tab = ScanTab(service, self.page)
        self.indexing_tab = IndexingTab(service, self.page)
        self.map_tab = MapTab(service, self.page)
        self.live_tab = LiveTab(service, self.page)
