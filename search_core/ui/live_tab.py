"""The Live tab: the visitor's microphone followed as it streams in (library sounds reported as they
happen, every sound event's category counted), and, for the operator, monitors of stream URLs."""
from __future__ import annotations

import html
import zlib

import gradio as gr
import pandas as pd

from ..monitor.manager import MonitorLimit
from ..monitor.sessions import SHOWN_SECONDS, LiveLimit, MicSession
from ..timeline import clock
from .page import USER_ERRORS, Tab

DETECTION_COLUMNS = ["#", "at", "sound", "category", "score", "speed", "pitch (semitones)"]
WIDTH, HEIGHT = 900, 170


def visitor(request: gr.Request | None) -> str:
    """Who a session belongs to, for the per-visitor limit: the address the request came from."""
    headers = getattr(request, "headers", None) or {}
    client = getattr(request, "client", None)
    forwarded = (headers.get("x-forwarded-for") or "").split(",")[0].strip()  # behind a Space's proxy
    return forwarded or (client.host if client else "unknown")


def _colour(label: str) -> str:
    return f"hsl({zlib.crc32(label.encode()) % 360}, 60%, 55%)"


def timeline_svg(session: MicSession) -> str:
    """The last SHOWN_SECONDS: the level (grey), the library sounds found (bands, named) and the
    category of every sound event (ticks under the axis)."""
    now = max(session.live.fed, 1e-6)
    t0 = max(0.0, now - SHOWN_SECONDS)
    span = max(now - t0, 1.0)

    def x(t: float) -> float:
        return round((t - t0) / span * WIDTH, 1)

    def y(db: float) -> float:
        return round(10 + (min(0.0, db) / -80.0) * 100, 1)

    parts = [f'<svg id="live-timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" '
             'xmlns="http://www.w3.org/2000/svg" style="background:var(--block-background-fill)">']
    pts = " ".join(f"{x(t)},{y(db)}" for t, db in session.levels if t >= t0)
    if pts:
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#9aa0ad" stroke-width="1"/>')
    for i, d in enumerate(session.detections):
        if d["end"] < t0:
            continue
        a, b = x(max(d["start"], t0)), x(d["end"])
        name = html.escape(f'{d["name"]} ({d["label"]}, {d["score"]:.2f})')
        parts.append(f'<g class="live-detection" data-name="{html.escape(d["name"])}"><rect x="{a}" y="10" width="{max(b - a, 2)}" '
                     f'height="100" fill="{_colour(d["label"])}" opacity="0.45"><title>{name}</title></rect>'
                     f'<text x="{a + 2}" y="{22 + 12 * (i % 3)}" font-size="11">{html.escape(d["name"])}</text></g>')
    for ev in session.sounds:
        if ev.end < t0:
            continue
        parts.append(f'<rect class="live-sound" x="{x(max(ev.start, t0))}" y="118" width="{max(x(ev.end) - x(max(ev.start, t0)), 2)}" '
                     f'height="14" fill="{_colour(ev.label)}"><title>{html.escape(ev.label)} {ev.probability:.2f}</title></rect>')
    parts.append(f'<text x="2" y="160" font-size="11">{clock(t0)}</text>'
                 f'<text x="{WIDTH - 2}" y="160" font-size="11" text-anchor="end">{clock(now)}</text>'
                 f'<text x="{WIDTH / 2}" y="160" font-size="11" text-anchor="middle">sounds like (category of each sound event)</text></svg>')
    return "".join(parts)


def counts_html(total) -> str:
    """Sound events per category as horizontal bars, most frequent first."""
    if not total:
        return "<div id='live-counts'><em>No sound events yet.</em></div>"
    top = max(total.values())
    rows = "".join(f"<div class='live-count' data-label='{html.escape(k)}' style='display:flex;align-items:center;gap:6px;margin:2px 0'>"
                   f"<span style='width:110px;text-align:right;font-size:12px'>{html.escape(k)}</span>"
                   f"<span style='display:inline-block;height:12px;width:{max(2, round(180 * v / top))}px;background:{_colour(k)}'></span>"
                   f"<span style='font-size:12px'>{v}</span></div>" for k, v in total.most_common())
    return f"<div id='live-counts'><strong>Sound events by category</strong>{rows}</div>"


class LiveTab(Tab):
    def listen(self, chunk, request: gr.Request) -> None:
        """One chunk of the visitor's microphone, queued for their session (`refresh` shows it)."""
        if chunk is None:
            return
        rate, samples = chunk
        try:
            session = self.service.live.session(request.session_hash or "local", visitor(request))
            session.push(int(rate), samples)  # scanned by the session's worker: this returns at once
        except LiveLimit as exc:
            raise gr.Error(str(exc)) from None
        except USER_ERRORS as exc:
            raise self.error(exc) from None

    def refresh(self, request: gr.Request):
        """The view of the visitor's running session (a timer redraws it: an update returned by the
        stream's own handler would hold up its next chunks, and Gradio keeps only the newest)."""
        session = self.service.live.get(request.session_hash or "local")
        if session is None:
            return (gr.skip(),) * 6
        with session.lock:
            return self.view(session, full=session.version != session.shown)

    def stopped(self, request: gr.Request):
        """The microphone stopped (or the time limit ended the stream): the session's last view."""
        session = self.service.live.end(request.session_hash or "local")
        if session is None:
            return (gr.skip(),) * 6
        *shown, _ = self.view(session, ended=True)
        csv = session.clips / f"{session.id}-categories.csv"
        csv.write_text(session.counts.to_csv())
        return (*shown, gr.update(value=str(csv), visible=True))

    def view(self, session: MicSession, ended: bool = False, full: bool = True):
        """(timeline, detections table, category counts, status line, detections state, CSV (skipped));
        not `full`: the timeline and the status line only (the rest did not change)."""
        session.shown = session.version
        dets = list(session.detections)
        heard = sum(session.counts.total.values())
        status = (f"{'Ended' if ended else 'Listening'}: {clock(session.live.fed)} heard · **{len(dets)} library "
                  f"sound{'s' * (len(dets) != 1)}** found · {heard} sound event{'s' * (heard != 1)} named by category")
        if session.dropped:
            status += f" · this server fell behind: {session.dropped:.0f} s of audio skipped"
        if session.missing > max(2.0, 0.05 * session.received):
            status += f" · about {session.missing:.0f} s of the microphone's audio did not reach the server (a slow connection or a busy server)"
        if session.error:
            status += f" · stopped: {self.service.access.visible_error(RuntimeError(session.error))}"
        if not full:
            return timeline_svg(session), gr.skip(), gr.skip(), status, gr.skip(), gr.skip()
        table = pd.DataFrame([{"#": i + 1, "at": clock(d["start"], 1), "sound": d["name"], "category": d["label"],
                               "score": round(d["score"], 3), "speed": d.get("speed"), "pitch (semitones)": d.get("pitch_semitones")}
                              for i, d in enumerate(dets)], columns=DETECTION_COLUMNS)
        counts = counts_html(session.counts.total)
        return timeline_svg(session), table, counts, status, dets, gr.skip()

    def play(self, detections, evt: gr.SelectData):
        """A detection row: the microphone's moment beside the library sound."""
        if not detections:
            return gr.skip(), gr.skip()
        i = int(evt.index[0])
        d = detections[i]
        clip = self.service.media.matched_part(d["path"], d["clip_start"], d["end"] - d["start"], d.get("duration"))
        name = f"{i + 1}. {d['name']} — {d['label']} (score {d['score']:.2f})"
        return (gr.update(value=d.get("moment"), label=f"{i + 1}. Heard at {clock(d['start'], 1)}", visible=True),
                gr.update(value=str(clip) if clip else None, label=name if clip else f"{name} (not served)", visible=True))

    # -- the operator's stream monitors ------------------------------------------------------------
    def start_monitor(self, url, token):
        try:
            self.service.access.require_monitor(token or None)
            info = self.service.monitors.start(url)
        except (MonitorLimit, *USER_ERRORS) as exc:
            raise self.error(exc) from None
        return f"Started monitor `{info['id']}` on {info['source']}.", self.monitors_table(token)

    def stop_monitor(self, monitor_id, token):
        try:
            self.service.access.require_monitor(token or None)
            info = self.service.monitors.stop((monitor_id or "").strip())
        except KeyError as exc:
            raise gr.Error(str(exc.args[0])) from None
        except USER_ERRORS as exc:
            raise self.error(exc) from None
        return f"Stopped monitor `{info['id']}` after {clock(info['stream_time'])}.", self.monitors_table(token)

    def monitors_table(self, token) -> pd.DataFrame:
        if not self.service.access.can_write(token or None):
            return pd.DataFrame()
        rows = [{"id": m["id"], "source": m["source"], "state": m["state"], "heard": clock(m["stream_time"]),
                 "library sounds": m["detections"], "gaps": m["gaps"],
                 "top categories": ", ".join(f"{k} {v}" for k, v in list(m["categories"].items())[:4])}
                for m in self.service.monitors.list()]
        return pd.DataFrame(rows, columns=["id", "source", "state", "heard", "library sounds", "gaps", "top categories"])
