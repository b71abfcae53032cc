"""The scan tab: a long recording scanned for library sounds (or for one given sound), shown as a
timeline and a table; a row plays the recording's moment beside the matching sound."""
from __future__ import annotations

import os

import gradio as gr
import pandas as pd

from ..audio import AudioError
from ..timeline import clock
from .page import USER_ERRORS, Tab


class ScanTab(Tab):
    def scan(self, recording, threshold, query, progress=gr.Progress()):
        """Scan a recording against the library, or (with a query sound) find that sound in it."""
        if not recording:
            raise gr.Error("Upload or record a recording first.")
        from ..recording import Recording
        from ..timeline import Mark, timeline_figure

        rec_name = os.path.basename(recording)

        def step(done, total, *_):
            if total:
                progress((round(done), round(total)), desc="Scanning", unit="s")

        try:
            with self.service.files.in_use(recording, query):
                moments, duration, took, what = self._scan(recording, threshold, query, rec_name, step)
                rec = Recording(recording)
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        for m in moments:
            m["recording"] = recording
        status = f"{what} in {rec_name} ({clock(duration)})"
        if took is not None:
            status += f" · scanned in {took:.1f} s"
        if not moments:
            status += f" · nothing reached the threshold {float(threshold):.2f}: try a lower one"
        fig = timeline_figure(rec, [Mark(m["start"], m["end"], m["name"], m["label"], m["score"]) for m in moments], rec_name)
        table = pd.DataFrame(
            [{"#": i + 1, "start": clock(m["start"], 1), "end": clock(m["end"], 1), "sound": m["name"], "category": m["label"],
              "score": round(m["score"], 3), "speed": m.get("speed"), "pitch (semitones)": m.get("pitch_semitones"),
              "gain dB": m.get("gain_db"), "channel": m.get("channel", "")} for i, m in enumerate(moments)],
            columns=["#", "start", "end", "sound", "category", "score", "speed", "pitch (semitones)", "gain dB", "channel"],
        )
        return (status, fig, gr.update(value=table, visible=bool(moments)), moments, *self.moment_players(moments, 0))

    def _scan(self, recording, threshold, query, rec_name, step):
        """(moments, duration, seconds taken or None, what was found) of a scan or a find."""
        if query:
            found = self.service.find(query, recording, float(threshold), os.path.basename(query), rec_name, progress=step)
            qname = os.path.splitext(found.query)[0]
            moments = [{"start": m.start, "end": m.end, "score": m.score, "name": qname, "label": "your sound",
                        "play": query, "clip_start": 0.0, **m.change} for m in found.matches]
            duration, took = found.duration, None
            what = f"**{qname}** occurs {len(moments)} time{'s' * (len(moments) != 1)}"
        else:
            result = self.service.scan(recording, float(threshold), rec_name, progress=step)
            moments = [{"start": d.start, "end": d.end, "score": d.score, "name": d.name, "label": d.label,
                        "play": d.path, "clip_start": d.clip_start, "duration": d.duration, **d.change} for d in result.detections]
            duration, took = result.duration, result.seconds
            what = f"**{len(moments)} library sound{'s' * (len(moments) != 1)}** found"
        return moments, duration, took, what

    def moment_players(self, moments, i: int):
        """The recording's moment and the matching sound, side by side."""
        if not moments:
            return gr.update(value=None, visible=False), gr.update(value=None, visible=False)
        m = moments[i]
        moment = self.service.media.excerpt(m["recording"], m["start"] - 0.2, m["end"] + 0.2)
        label = f"{i + 1}. The recording at {clock(m['start'], 1)}–{clock(m['end'], 1)}"
        clip = m["play"] if m["label"] == "your sound" else \
            self.service.media.matched_part(m["play"], m["clip_start"], m["end"] - m["start"], m.get("duration"))
        name = f"{i + 1}. {m['name']} — {m['label']} (score {m['score']:.2f})"
        return (gr.update(value=str(moment), label=label, visible=True),
                gr.update(value=str(clip) if clip else None, label=name if clip else f"{name} (not served)", visible=True))

    def play_moment(self, moments, evt: gr.SelectData):
        try:
            return self.moment_players(moments, int(evt.index[0]))
        except AudioError:  # the visitor's recording was swept from the cache since the scan
            raise gr.Error("This recording is no longer on the server (uploads are kept for a while); upload it again.") from None
