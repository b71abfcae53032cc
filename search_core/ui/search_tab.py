"""The search tab: a visitor's sound (uploaded or recorded) finds the library's most similar
sounds, each with a player (the matching part of a long sound), and "more like this" per result."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from ..search import tags_text
from ..timeline import clock
from .page import ANY, K_MAX, USER_ERRORS, Tab


class SearchTab(Tab):
    def search(self, audio_path, top_k, category, max_duration):
        if not audio_path:
            raise gr.Error("Upload or record a sound first.")
        try:
            count = self.service.library.count()
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        if count == 0:
            raise gr.Error("The library is empty: index the sample set first (the button above, or the Indexing tab).")
        label = None if category in (None, "", ANY) else category
        try:
            with self.service.files.in_use(audio_path):
                result = self.service.similar(audio_path, int(top_k), label, max_duration or None)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        status = f"Top {len(result.frame)} of {count} sounds" if len(result.frame) else "No sound matches these filters."
        return self.show_results(result, status)

    def more_like_this(self, ids, i: int, top_k):
        """A result's own stored vector searches again (the model does not run)."""
        if not ids or i >= len(ids):
            raise gr.Error("Search first, then pick a result.")
        try:
            result = self.service.similar_by_id(ids[i], int(top_k))
            item = self.service.library.get(ids[i])
        except (KeyError, *USER_ERRORS) as exc:
            raise (gr.Error("That sound is no longer in the library.") if isinstance(exc, KeyError) else self.error(exc)) from None
        return self.show_results(result, f"More like **{item['name']}** ({item['label']}): top {len(result.frame)}")

    def show_results(self, result, status: str):
        """Status (with the suggested category and the query's tags), the table, the 20 result slots,
        the query's vector (the map's ★) and the result ids."""
        frame = result.frame
        if result.suggestion:
            status += f" · **{result.suggestion.describe()}**"
        if result.query_tags:
            status += f"\n\nThe model hears: {tags_text(result.query_tags, 3)}"
        slots, players = [], []
        for row in frame.itertuples():
            path = self.service.media.playable(row.path)
            title = f"{row.rank}. {row.name} — {row.label} — {row.score:.2f}"
            if pd.notna(row.percentile):
                title += f" · percentile {row.percentile:.1f}"
            if row.tags:
                title += f" · {tags_text(row.tags, 2)}"
            if path and row.end - row.start < row.duration - 0.01:  # a long sound: play the part that matched
                path = self.service.media.excerpt(path, row.start, row.end)
                title += f" · {clock(row.start)}–{clock(row.end)} of {clock(row.duration)}"
            slots.append(gr.update(visible=True))
            players.append(gr.update(value=str(path) if path else None, label=title if path else f"{title} (not served)"))
        slots += [gr.update(visible=False)] * (K_MAX - len(slots))
        players += [gr.update(value=None)] * (K_MAX - len(players))
        table = frame[["rank", "name", "label", "score", "percentile", "duration"]].rename(columns={"label": "category"}).round({"score": 3})
        return [status, gr.update(value=table, visible=len(frame) > 0), *slots, *players, result.vector, list(frame["id"])]

    def research(self, audio_path, top_k, category, max_duration):
        """Re-run the search when top-K changes, but only once there is a sound to search with."""
        try:
            empty = self.service.library.count() == 0
        except USER_ERRORS:
            empty = True
        if not audio_path or empty:
            return [gr.skip()] * (2 + 2 * K_MAX + 2)
        return self.search(audio_path, top_k, category, max_duration)
