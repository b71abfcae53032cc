"""The indexing tab: index the bundled sample set or a visitor's files (operator rules apply),
delete and clear (operator only), and the library's near-duplicate groups."""
from __future__ import annotations

import os
from html import escape

import gradio as gr

from .page import USER_ERRORS, Tab


class IndexingTab(Tab):
    def find_dupes(self, threshold, progress=gr.Progress()):
        """The groups as HTML (a player per file, streamed by id from the REST API) and a summary."""
        def step(done, total, _):
            if total:
                progress((done, total), desc="Comparing candidate pairs", unit="pairs")

        try:
            result = self.service.dupes(float(threshold), progress=step)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        return dupes_html(result)

    def delete_copies(self, threshold, token):
        try:
            n, names = self.service.delete_copies(float(threshold), token or None)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        text = f"Deleted {n} extra cop{'y' if n == 1 else 'ies'} (kept the first of each group)" + (": " + ", ".join(names) if names else ".")
        return (text, *self.page.refresh(), dupes_html(self.service.dupes(float(threshold))))

    def index_sample(self, progress=gr.Progress()):
        def step(done, total, name):
            if total:
                progress((done, total), desc=f"Indexing {name}", unit="files")

        try:
            report = self.service.index_sample(step)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        return (f"Bundled game sounds: {report.summary()}", *self.page.refresh())

    def index_files(self, files, label, token, progress=gr.Progress()):
        if not files:
            raise gr.Error("Choose one or more audio files (or a zip) first.")
        try:
            self.service.access.require_write(token or None)
            with self.service.files.in_use(*files):
                uploads, rejected = self.service.uploads.ingest([(os.path.basename(f), f) for f in files])
            report = self.service.index_uploads(uploads, label, lambda d, t, n: t and progress((d, t), desc=f"Indexing {n}", unit="files")) if uploads else None
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        text = f"Your files: {report.summary()}" if report else "Your files: nothing to index."
        text += "".join(f"\n  rejected: {name}: {reason}" for name, reason in rejected)
        return (text, *self.page.refresh())

    def delete_item(self, item_id, token):
        try:
            n = self.service.delete((item_id or "").strip(), token or None)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        return (f"Deleted {n} item(s).", *self.page.refresh())

    def clear_library(self, token):
        try:
            self.service.clear(token or None)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        return ("Library cleared.", *self.page.refresh())


def dupes_html(result) -> str:
    """Each group as a card: its score, then one row per file with a player; the keeper first."""
    if not result.groups:
        return (f"<p id='dupes-summary'>No near-duplicates among {result.files} sounds (threshold {result.threshold:.2f}).</p>"
                + contained_html(result))
    parts = [f"<p id='dupes-summary'><b>{len(result.groups)} group{'s' * (len(result.groups) != 1)} of near-duplicates</b> among "
             f"{result.files} sounds (threshold {result.threshold:.2f}; compared in {result.seconds:.1f} s). "
             "The first of each group is the one to keep (lossless, indexed first, highest sample rate, shortest name).</p>"]
    for n, g in enumerate(result.groups, 1):
        rows = "".join(
            f"<li>{'<b>keep</b>' if k == 0 else 'copy'} · {escape(it['name'])} — {escape(it['label'])} · "
            f"{float(it['duration']):.2f} s · {int(it['sample_rate'] or 0)} Hz "
            f"<audio controls preload='none' src='api/audio/{escape(it['id'])}'></audio></li>"
            for k, it in enumerate(g.items)
        )
        parts.append(f"<div class='dupe-group'><b>Group {n}</b> · similarity {g.score:.2f}<ul>{rows}</ul></div>")
    return "".join(parts) + contained_html(result)


def contained_html(result) -> str:
    """The clips that are a piece of a longer file: each with where it lies, both playable."""
    if not result.contained:
        return ""
    rows = "".join(
        f"<li>{escape(c.clip['name'])} ({float(c.clip['duration']):.2f} s) "
        f"<audio controls preload='none' src='api/audio/{escape(c.clip['id'])}'></audio> is inside "
        f"{escape(c.within['name'])} at {c.offset:.2f} s (score {c.score:.2f}) "
        f"<audio controls preload='none' src='api/audio/{escape(c.within['id'])}'></audio></li>"
        for c in result.contained)
    return (f"<div class='dupe-group' id='dupes-contained'><b>Clips inside longer files</b> · "
            f"{len(result.contained)} (kept: a clip is not deleted as a copy)<ul>{rows}</ul></div>")
