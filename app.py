"""Soundalike: find the sounds that sound alike.

The Gradio UI at `/` and the REST API under `/api` (docs at `/docs`), in one process.
Layout and event wiring only: all logic lives in `search_core`.

    python app.py            # http://127.0.0.1:7860
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from search_core.api import create_api  # noqa: E402
from search_core.embedders import ModelUnavailable  # noqa: E402
from search_core.dupes import DEFAULT_THRESHOLD as DUPES_THRESHOLD  # noqa: E402
from search_core.scan import DEFAULT_THRESHOLD  # noqa: E402
from search_core.service import Service  # noqa: E402
from search_core.ui import ANY, K_MAX, Handlers  # noqa: E402
from search_core.ui.map_tab import MAP_CLICK_JS  # noqa: E402
from search_core.settings import Settings  # noqa: E402
from search_core.appfile import app_file, remove_card, write_card  # noqa: E402
from search_core.store import LibraryLocked, StoreError, lite_lock_held  # noqa: E402

EXAMPLES = ["explosion/chromium_exploBig.ogg", "voice/hedgewars_Hello.ogg", "magic/wesnoth_magic-holy-1.ogg", "water/hedgewars_splash.ogg", "ui_click/wesnoth_button.ogg"]
CSS = """
.result-player { margin-bottom: 4px !important; }
.dupe-group { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin: 6px 0; }
.dupe-group audio { height: 28px; vertical-align: middle; }
#header h1 { margin-bottom: 0; }
"""


def build_ui(service: Service) -> gr.Blocks:
    settings = service.settings
    admin_ui = bool(settings.admin or settings.admin_token)
    h = Handlers(service)

    # -- layout ---------------------------------------------------------------------------------
    with gr.Blocks(title="Soundalike — audio similarity search") as demo:
        header = gr.Markdown(elem_id="header")
        loading_timer = gr.Timer(2.0, active=False)  # polls the header while the model loads
        with gr.Tabs():
            with gr.Tab("Search", id="search"):
                with gr.Column(visible=False, elem_id="empty-banner") as empty_banner:
                    gr.Markdown("**The library is empty.** Index the bundled game sounds (about 200 clips, under a minute) to start searching.")
                    banner_btn = gr.Button("Index the bundled game sounds", variant="primary")
                with gr.Row():
                    with gr.Column(scale=2):
                        query = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Your sound", elem_id="query", buttons=["download"])
                        top_k = gr.Slider(1, K_MAX, value=5, step=1, label="How many results (top-K)")
                        with gr.Accordion("Filters", open=False):
                            category = gr.Dropdown(choices=[ANY], value=ANY, label="Category")
                            max_duration = gr.Number(value=None, label="Longest result (seconds)", minimum=0)
                        search_btn = gr.Button("Search", variant="primary", elem_id="search-btn")
                        examples = [str(service.media.sample_dir / e) for e in EXAMPLES if (service.media.sample_dir / e).is_file()]
                        if examples:
                            gr.Examples(examples=[[e] for e in examples], inputs=[query], label="Try a game sound")
                    with gr.Column(scale=3):
                        status = gr.Markdown(elem_id="status")
                        slots, players, more_btns = [], [], []
                        for i in range(K_MAX):
                            with gr.Group(visible=False, elem_id=f"slot-{i}") as slot:
                                players.append(gr.Audio(interactive=False, buttons=["download"], elem_classes=["result-player"], elem_id=f"result-{i}"))
                                more_btns.append(gr.Button("More like this", size="sm", elem_id=f"more-{i}"))
                            slots.append(slot)
                        result_ids = gr.State([])
                        results = gr.Dataframe(visible=False, interactive=False, label="Results", elem_id="results-table")
            with gr.Tab("Scan a recording", id="scan"):
                gr.Markdown("Find the library's sounds inside a long recording (a gameplay video's audio, a trailer, a stream), "
                            "with the times they occur — or give a sound too, and find where that one occurs.")
                with gr.Row():
                    with gr.Column(scale=2):
                        scan_rec = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="scan-recording", buttons=["download"])
                        scan_threshold = gr.Slider(0.1, 0.99, value=DEFAULT_THRESHOLD, step=0.01, label="Threshold (how exact a match must be)",
                                                   info=f"{DEFAULT_THRESHOLD} finds the exact library sounds with few false detections; lower finds more")
                        with gr.Accordion("Find one sound instead (optional)", open=False):
                            scan_query = gr.Audio(sources=["upload", "microphone"], type="filepath", label="The sound to find", elem_id="scan-query")
                        scan_btn = gr.Button("Scan", variant="primary", elem_id="scan-btn")
                    with gr.Column(scale=5):
                        scan_status = gr.Markdown(elem_id="scan-status")
                        scan_plot = gr.Plot(label="Timeline", elem_id="scan-timeline", show_label=False)
                        with gr.Row():
                            moment_player = gr.Audio(visible=False, interactive=False, elem_id="scan-moment", buttons=["download"])
                            clip_player = gr.Audio(visible=False, interactive=False, elem_id="scan-clip", buttons=["download"])
                        scan_table = gr.Dataframe(visible=False, interactive=False, label="Detections (click a row to hear it)", elem_id="scan-table", max_height=360)
                scan_state = gr.State([])
            with gr.Tab("Live", id="live"):
                gr.Markdown("Listen through your microphone: library sounds are reported as they happen, and every sound "
                            f"event is named by the library category it most likely is. A session lasts {settings.live_seconds:.0f} s at most.")
                with gr.Row():
                    with gr.Column(scale=2):
                        live_mic = gr.Audio(sources=["microphone"], type="numpy", streaming=True, label="Microphone", elem_id="live-mic")
                        live_status = gr.Markdown(elem_id="live-status")
                        live_chart = gr.HTML(elem_id="live-chart")
                        live_csv = gr.File(label="Categories per minute (CSV)", visible=False, elem_id="live-csv")
                    with gr.Column(scale=5):
                        live_timeline = gr.HTML(elem_id="live-timeline-box")
                        with gr.Row():
                            live_moment = gr.Audio(visible=False, interactive=False, elem_id="live-moment", buttons=["download"])
                            live_clip = gr.Audio(visible=False, interactive=False, elem_id="live-clip", buttons=["download"])
                        live_table = gr.Dataframe(interactive=False, label="Library sounds heard (click a row to hear it)",
                                                  elem_id="live-table", max_height=300)
                live_state = gr.State([])
                live_timer = gr.Timer(1.0, active=False)  # redraws the view while the microphone streams
                with gr.Accordion("Operator: monitor a stream URL", open=False, visible=service.access.can_write() or bool(settings.admin_token)):
                    gr.Markdown("The server follows the stream (Icecast, HLS) until stopped; its events: `GET /api/monitors/{id}/events` "
                                "(Server-Sent Events), its categories per minute: `GET /api/monitors/{id}/categories.csv`.")
                    with gr.Row():
                        monitor_url = gr.Textbox(label="Stream URL (http/https)", elem_id="monitor-url")
                        monitor_btn = gr.Button("Start monitor", elem_id="monitor-start")
                    with gr.Row():
                        monitor_id = gr.Textbox(label="Monitor id to stop")
                        monitor_stop = gr.Button("Stop monitor", variant="stop")
                        monitors_refresh = gr.Button("Refresh")
                    monitor_msg = gr.Markdown()
                    monitors_list = gr.Dataframe(interactive=False, label="Monitors", elem_id="monitors")
            with gr.Tab("Indexing", id="indexing"):
                gr.Markdown("### The bundled game sounds\nFree game sound effects from Debian's game packages, labelled by category (see `sample_data/LICENSES.md`).")
                sample_btn = gr.Button("Index the bundled game-sound set", variant="primary", elem_id="index-sample-btn")
                gr.Markdown("### Your own sounds\nSeveral audio files at once, or a zip of them. They are checked by content and stored under generated names.")
                files = gr.File(file_count="multiple", file_types=["audio", ".zip"], label="Audio files or a zip")
                with gr.Row():
                    upload_label = gr.Textbox(label="Category for these files", placeholder="uploads", max_length=100)
                    token = gr.Textbox(label="Operator token", type="password", visible=bool(settings.admin_token))
                upload_btn = gr.Button("Index my files", interactive=service.access.can_write() or bool(settings.admin_token))
                if not (service.access.can_write() or settings.admin_token):
                    gr.Markdown("_Adding files is disabled on this public demo._")
                report = gr.Textbox(label="Indexing report", lines=6, elem_id="index-report")
                lib_table = gr.Dataframe(label="Library by category", interactive=False)
                gr.Markdown("### Duplicates\nThe same sound in different versions (re-encoded, resampled, trimmed, padded, louder or quieter). "
                            "Different takes of a similar sound are not duplicates.")
                with gr.Row():
                    dupes_threshold = gr.Slider(0.5, 0.99, value=DUPES_THRESHOLD, step=0.01, label="How alike copies must be",
                                                info=f"{DUPES_THRESHOLD}: copies score 0.9-1.0, different takes under 0.7")
                    dupes_btn = gr.Button("Find near-duplicates", elem_id="dupes-btn")
                dupes_out = gr.HTML(elem_id="dupes")
                with gr.Accordion("Operator: delete and clear", open=False, visible=admin_ui):
                    delete_id = gr.Textbox(label="Item id to delete (see the results table of the REST API or `python -m search_core`)")
                    with gr.Row():
                        delete_btn = gr.Button("Delete item", variant="stop")
                        copies_btn = gr.Button("Delete the extra copies of every duplicate group", variant="stop", elem_id="delete-copies-btn")
                        clear_btn = gr.Button("Clear the whole library", variant="stop")
            with gr.Tab("Library map", id="map") as map_tab:
                map_info = gr.Markdown(elem_id="map-info")
                with gr.Row():
                    map_plot = gr.Plot(elem_id="library-map", show_label=False, scale=4)
                    with gr.Column(scale=1, min_width=240):
                        map_player = gr.Audio(interactive=False, autoplay=True, label="Click a point to hear it", elem_id="map-player",
                                              buttons=["download"])
                # A click on a point names it here (plotly's click event has no Gradio listener of its own)
                map_pick = gr.HTML("", js_on_load=MAP_CLICK_JS, visible="hidden", elem_id="map-pick")
            last_query = gr.State(None)  # the last search's vector: the map's ★

        # -- wiring -----------------------------------------------------------------------------
        refresh_outputs = [header, empty_banner, category, lib_table, loading_timer]
        index_outputs = [report, *refresh_outputs]
        search_inputs = [query, top_k, category, max_duration]
        search_outputs = [status, results, *slots, *players, last_query, result_ids]
        demo.load(h.page.refresh, outputs=refresh_outputs, api_visibility="private")
        loading_timer.tick(h.page.refresh, outputs=refresh_outputs, api_visibility="private")
        search_btn.click(h.search_tab.search, search_inputs, search_outputs, api_name="search", concurrency_limit=2, concurrency_id="search")
        query.stop_recording(h.search_tab.search, search_inputs, search_outputs, api_visibility="private", concurrency_id="search")
        top_k.release(h.search_tab.research, search_inputs, search_outputs, api_visibility="private", concurrency_id="search")
        for i, btn in enumerate(more_btns):
            btn.click(lambda ids, k, i=i: h.search_tab.more_like_this(ids, i, k), [result_ids, top_k], search_outputs,
                      api_visibility="private", concurrency_id="search")
        dupes_btn.click(h.indexing_tab.find_dupes, [dupes_threshold], [dupes_out], api_name="dupes", concurrency_limit=1, concurrency_id="dupes")
        copies_btn.click(h.indexing_tab.delete_copies, [dupes_threshold, token], [report, *refresh_outputs, dupes_out],
                         api_name="delete_copies", concurrency_limit=1, concurrency_id="index")
        sample_btn.click(h.indexing_tab.index_sample, None, index_outputs, api_name="index_sample", concurrency_limit=1, concurrency_id="index")
        banner_btn.click(h.indexing_tab.index_sample, None, index_outputs, api_visibility="private", concurrency_limit=1, concurrency_id="index")
        upload_btn.click(h.indexing_tab.index_files, [files, upload_label, token], index_outputs, api_name="index_files", concurrency_limit=1, concurrency_id="index")
        delete_btn.click(h.indexing_tab.delete_item, [delete_id, token], index_outputs, api_name="delete", concurrency_limit=1, concurrency_id="index")
        clear_btn.click(h.indexing_tab.clear_library, [token], index_outputs, api_name="clear", concurrency_limit=1, concurrency_id="index")
        map_tab.select(h.map_tab.map_view, [last_query], [map_plot, map_info], api_name="library_map", concurrency_id="map", concurrency_limit=1)
        scan_btn.click(h.scan_tab.scan, [scan_rec, scan_threshold, scan_query], [scan_status, scan_plot, scan_table, scan_state, moment_player, clip_player],
                       api_name="scan", concurrency_limit=1, concurrency_id="scan")
        scan_table.select(h.scan_tab.play_moment, [scan_state], [moment_player, clip_player], api_visibility="private")
        map_pick.change(h.map_tab.play_from_map, [map_pick], [map_player], api_visibility="private")
        live_outputs = [live_timeline, live_table, live_chart, live_status, live_state, live_csv]
        live_mic.stream(h.live_tab.listen, [live_mic], None, stream_every=0.5, time_limit=int(settings.live_seconds),
                        concurrency_limit=max(1, settings.live_sessions), concurrency_id="live", api_visibility="private")
        live_mic.start_recording(lambda: gr.Timer(active=True), None, live_timer, api_visibility="private", queue=False)
        live_timer.tick(h.live_tab.refresh, None, live_outputs, api_visibility="private", concurrency_limit=None, concurrency_id="live-view")
        live_mic.stop_recording(lambda: gr.Timer(active=False), None, live_timer, api_visibility="private", queue=False)
        live_mic.stop_recording(h.live_tab.stopped, None, live_outputs, api_visibility="private")
        live_table.select(h.live_tab.play, [live_state], [live_moment, live_clip], api_visibility="private")
        monitor_btn.click(h.live_tab.start_monitor, [monitor_url, token], [monitor_msg, monitors_list], api_visibility="private")
        monitor_stop.click(h.live_tab.stop_monitor, [monitor_id, token], [monitor_msg, monitors_list], api_visibility="private")
        monitors_refresh.click(h.live_tab.monitors_table, [token], [monitors_list], api_visibility="private")
    return demo


def create_app(settings: Settings | None = None, *, load_in_background: bool = False) -> FastAPI:
    """The whole server: REST API routes first, the Gradio UI mounted at `/`.

    load_in_background: serve at once and load the model meanwhile (the UI says "loading", the API
    answers 503); otherwise the model is loaded before the first request."""
    service = Service(settings or Settings.from_env())
    if load_in_background:
        service.loader.load_in_background()
    else:
        try:
            service.library
        except LibraryLocked:
            raise  # another process has the library file: this app could never serve it (main() says why)
        except (ModelUnavailable, StoreError) as exc:  # keep serving: the UI says why, the API answers 503
            print(f"warning: {exc}", flush=True)
    app = create_api(service)
    # Gradio writes uploads and the copies it makes for players under GRADIO_TEMP_DIR, read when
    # the UI is built: point it at this app's swept folder (Gradio has no other setting for it).
    os.environ["GRADIO_TEMP_DIR"] = str(service.files.gradio_dir)
    demo = build_ui(service)
    demo.queue(default_concurrency_limit=2, max_size=64)
    db = service.settings.data_dir / "soundalike.db"
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        allowed_paths=[str(p) for p in service.media.roots()] + [str(service.files.excerpt_dir)],
        blocked_paths=[str(db.resolve()), str(service.settings.data_dir.resolve() / "soundalike.db.lock"),
                       str(app_file(service.settings.data_dir).resolve())],
        max_file_size=service.settings.max_upload_bytes,
        footer_links=["api"],
        # local font stacks: visitors' browsers fetch nothing from font CDNs
        theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
        css=CSS,
    )
    app.state.service = service
    # Visitor files have a bounded life: a sweep every sweep_interval, and soon after any POST
    # (uploads, searches), so a burst of visitors cannot outrun the size bound for long.
    service.files.protect_hooks.append(lambda: cached_examples(demo))
    service.files.start_housekeeping().chores.append(lambda: forget_swept(demo))
    app.add_middleware(PokeAfterPost, poke=service.files.poke_housekeeper)
    return app


def cached_examples(demo: gr.Blocks) -> set[str]:
    """Files Gradio keeps in its cache for the app's lifetime (the examples' copies)."""
    return {p for block in list(demo.blocks.values()) for p in getattr(block, "keep_in_cache", ())}


def forget_swept(demo: gr.Blocks) -> None:
    """Gradio remembers every file it wrote (to delete them at shutdown); drop the swept ones so
    those sets do not grow for the life of the process."""
    for files in getattr(demo, "temp_file_sets", []):
        gone = {f for f in list(files) if not os.path.exists(f)}
        files -= gone


class PokeAfterPost:
    """ASGI middleware: after each POST, wake the housekeeper (it sweeps at most once a second)."""

    def __init__(self, app, poke):
        self.app, self.poke = app, poke

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope.get("method") == "POST":
            self.poke()


def main() -> int:
    import signal
    import socket

    import uvicorn

    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", os.environ.get("PORT", "7860")))
    settings = Settings.from_env()
    try:
        if settings.is_lite and lite_lock_held(settings.uri):
            raise LibraryLocked(settings.uri)  # before loading a model for nothing
        app = create_app(settings, load_in_background=True)
    except LibraryLocked as exc:
        print(f"error: {exc}\nStop the other app (or wait for the command to finish), or give this app its own "
              "library with SOUNDALIKE_DATA_DIR. While an app runs, `python -m search_core ...` works through it.",
              file=sys.stderr, flush=True)
        return 1
    service = app.state.service
    # Bind before announcing anything: a taken port is a clear message, and the app file below
    # never points at a server that did not start. Port 0 picks a free port.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port} ({exc.strerror}); set GRADIO_SERVER_PORT to a free port.", file=sys.stderr, flush=True)
        return 1
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    card = None
    try:
        card = write_card(service.settings, url, service.local_secret)
    except OSError as exc:  # a read-only data folder: the app serves, the CLI cannot come through it
        print(f"warning: cannot write the app file for the CLI ({exc})", flush=True)
    print(f"Soundalike: serving the UI at {url}/ and the API docs at {url}/docs (the model loads meanwhile).", flush=True)
    if card:
        print("While it runs, `python -m search_core index|search|stats|delete|scan|dupes` on this data folder works through it.", flush=True)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handler it found: make that an orderly exit, so the cards are removed below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        remove_card(service.settings.data_dir, url, service.local_secret)
    return 0


if __name__ == "__main__":
    sys.exit(main())
