"""End to end in real headless Chromium (Debian's), driven by Playwright: index the bundled set from
the Indexing tab, upload a sample clip on the Search tab, hear K results with that clip first."""
from __future__ import annotations

import os
import re
import shutil

import pytest

from benchmarks.running import REPO

from .apprunner import running_app
from .conftest import SAMPLE_DATA

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed; scripts/install.sh --dev installs it")
        pytest.skip("Debian chromium is not installed (scripts/install.sh --dev installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def wait_header(page, text: str, timeout: int = 60_000) -> str:
    """Waits until the header's one line reads `text` (the page fills it after it loads)."""
    page.wait_for_function("t => document.querySelector('#header')?.innerText.includes(t)", arg=text, timeout=timeout)
    return page.locator("#header").inner_text()


def test_index_then_search_in_the_browser(browser, tmp_path):
    query = tmp_path / "my query.ogg"  # a visitor's copy of a bundled clip
    shutil.copyfile(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg", query)
    with running_app(tmp_path / "data") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Not "networkidle": Playwright never sees some of the lazily loaded component chunks of the
        # scan tab finish, so the page never counts as idle; wait for what the test needs instead.
        page.goto(url)
        wait_header(page, "· 0 sounds in 0 categories")
        assert page.locator("#empty-banner").is_visible()

        page.get_by_role("tab", name="Indexing").click()
        page.locator("#index-sample-btn").click()
        report = page.locator("#index-report textarea")
        page.wait_for_function(
            "() => document.querySelector('#index-report textarea').value.includes('added')", timeout=300_000
        )
        text = report.input_value()
        assert re.search(r"added 2\d\d, updated 0, unchanged 0, failed 0", text), text

        page.get_by_role("tab", name="Search").click()
        assert not page.locator("#empty-banner").is_visible()
        page.locator("#query input[type=file]").set_input_files(str(query))
        page.locator("#query [data-testid='download-link']").wait_for(state="attached", timeout=30_000)  # upload done
        page.locator("#search-btn").click()
        first = page.locator("#result-0")
        first.wait_for(state="visible", timeout=60_000)
        page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('Top 5')", timeout=60_000)
        labels = [page.locator(f"#result-{i}").inner_text() for i in range(5)]
        assert "1. hedgewars_Hello — voice — 1.00" in labels[0]
        assert all(page.locator(f"#result-{i}").is_visible() for i in range(5))
        assert not page.locator("#result-5").is_visible()
        assert page.locator("#results-table").is_visible()
        assert "Sounds like: voice" in page.locator("#status").inner_text()
        page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
        assert (tmp_path / "search.png").stat().st_size > 10_000
        shutil.copyfile(tmp_path / "search.png", os.environ.get("SOUNDALIKE_SCREENSHOT", str(tmp_path / "copy.png")))

        # "More like this" on the second result: its neighbours replace the results, itself left out
        name = re.search(r"2\. (\S+) — ", labels[1]).group(1)
        page.locator("#more-1").click()
        page.wait_for_function(f"() => document.querySelector('#status')?.innerText.includes('More like {name}')", timeout=60_000)
        page.locator("#result-0").wait_for(state="visible", timeout=30_000)
        after = [page.locator(f"#result-{i}").inner_text() for i in range(5)]
        assert not any(f". {name} — " in t for t in after), (labels[1], after)


def test_scan_tab_marks_the_inserted_sounds_on_a_timeline(browser, tmp_path, sample_settings):
    from benchmarks.mixes import build_mix

    data = tmp_path / "data"
    shutil.copytree(sample_settings.data_dir, data)
    mix = tmp_path / "gameplay.ogg"
    truth = build_mix(mix, minutes=0.75, clips=4, seed=22)
    with running_app(data) as url:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)  # not "networkidle": see the test above
        wait_header(page, "· 207 sounds in 16 categories")
        page.get_by_role("tab", name="Scan a recording").click()
        page.locator("#scan-recording input[type=file]").set_input_files(str(mix))
        page.locator("#scan-recording [data-testid='download-link']").wait_for(state="attached", timeout=30_000)
        page.locator("#scan-btn").click()
        page.wait_for_function("() => document.querySelector('#scan-status')?.innerText.includes('found in gameplay.ogg')", timeout=180_000)
        status = page.locator("#scan-status").inner_text()
        assert "4 library sounds found" in status, status
        table = page.locator("#scan-table")
        table.wait_for(state="visible")
        text = table.inner_text()
        assert all(ins["name"] in text for ins in truth["insertions"]), text
        assert page.locator("#scan-timeline img, #scan-timeline svg, #scan-timeline canvas").count() >= 1
        assert page.locator("#scan-moment").is_visible() and page.locator("#scan-clip").is_visible()
        assert "1. The recording at" in page.locator("#scan-moment").inner_text()
        page.get_by_text(truth["insertions"][2]["name"]).first.click()  # a row: both players load that detection
        page.wait_for_function("() => document.querySelector('#scan-clip')?.innerText.includes('3. ')", timeout=30_000)
        assert truth["insertions"][2]["name"] in page.locator("#scan-clip").inner_text()
        page.screenshot(path=str(tmp_path / "scan.png"), full_page=True)
        assert (tmp_path / "scan.png").stat().st_size > 10_000
        shutil.copyfile(tmp_path / "scan.png", os.environ.get("SOUNDALIKE_SCAN_SCREENSHOT", str(tmp_path / "copy-scan.png")))


def test_public_demo_header_map_click_and_readable_scores(browser, tmp_path, sample_settings):
    """What a visitor of a public demo sees first: one line, no server path anywhere on the page
    (the offline fallback's reason and how-to are in the collapsed details, redacted); results
    with a percentile; a map whose points name themselves on hover and play on click."""
    data = tmp_path / "data"
    shutil.copytree(sample_settings.data_dir, data)
    panns = tmp_path / "panns_home"
    query = tmp_path / "boom.ogg"
    shutil.copyfile(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg", query)
    env = dict(SOUNDALIKE_PUBLIC="1", SOUNDALIKE_MODEL="auto", SOUNDALIKE_ALLOW_DOWNLOAD="1", PANNS_DATA_DIR=str(panns),
               PANNS_URL="http://127.0.0.1:9/Cnn14_mAP%3D0.431.pth", SOUNDALIKE_DOWNLOAD_TIMEOUT="3")
    with running_app(data, **env) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        header = wait_header(page, "· 207 sounds in 16 categories")
        assert [line for line in header.splitlines() if line.strip()][:2] == ["Soundalike", "aisfx · sound-effects model, runs offline · 207 sounds in 16 categories · PANNs unavailable"]
        page.locator("#header summary").click()
        page.get_by_text("Why not PANNs Cnn14").wait_for(timeout=10_000)
        text = page.locator("body").inner_text()
        assert "Could not download the PANNs Cnn14 checkpoint" in text and "[server path]" in text
        assert str(tmp_path) not in text and str(REPO) not in text and "/home/" not in text and "/tmp/" not in text

        page.locator("#query input[type=file]").set_input_files(str(query))
        page.locator("#query [data-testid='download-link']").wait_for(state="attached", timeout=30_000)
        page.locator("#search-btn").click()
        page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('Top 5')", timeout=60_000)
        labels = [page.locator(f"#result-{i}").inner_text() for i in range(5)]
        pcts = [float(re.search(r"percentile (\d+\.\d)", t).group(1)) for t in labels]
        assert labels[0].startswith("1. chromium_exploBig — explosion — 1.00 · percentile 100.0"), labels[0]
        assert pcts == sorted(pcts, reverse=True) and pcts[-1] < 100.0
        assert "percentile" in page.locator("#results-table").inner_text()

        page.get_by_role("tab", name="Library map").click()
        page.locator("#library-map .js-plotly-plot").wait_for(timeout=60_000)
        page.wait_for_function("() => document.querySelector('#map-info')?.innerText.includes('207 sounds')", timeout=60_000)
        traces = page.evaluate("() => document.querySelector('#library-map .js-plotly-plot')._fullData.map(t => [t.name, t.x.length])")
        assert ["★ your query", 1] in traces and sum(n for name, n in traces if name != "★ your query") == 207
        # the pixel position of a water sound, from plotly's own axes: the one farthest from any
        # other point, so the cursor is on that point alone
        x, y, name = page.evaluate("""() => {
            const d = document.querySelector('#library-map .js-plotly-plot'), fl = d._fullLayout, r = d.getBoundingClientRect();
            const px = (t, i) => [r.left + fl._size.l + fl.xaxis.l2p(t.x[i]), r.top + fl._size.t + fl.yaxis.l2p(t.y[i])];
            const all = d._fullData.flatMap(t => t.x.map((_, i) => px(t, i)));
            const water = d._fullData.find(t => t.name.startsWith('water '));
            let best = null;
            water.x.forEach((_, i) => {
                const [x, y] = px(water, i);
                const gap = Math.min(...all.map(([a, b]) => Math.hypot(a - x, b - y)).filter(g => g > 0.01));
                if (!best || gap > best[3]) best = [x, y, water.text[i], gap];
            });
            return best.slice(0, 3);
        }""")
        page.mouse.move(x, y)
        page.wait_for_function("n => Array.from(document.querySelectorAll('#library-map .hovertext')).some(e => e.textContent.includes(n))",
                               arg=name, timeout=10_000)
        hover = page.locator("#library-map .hovertext").first.text_content()  # an SVG element
        assert name in hover and "water" in hover
        # every media element that starts playing is noted (the player's own is not in the page's DOM)
        page.evaluate("""() => { const play = HTMLMediaElement.prototype.play;
            HTMLMediaElement.prototype.play = function () { window.__playing = this; return play.apply(this, arguments); }; }""")
        page.mouse.click(x, y)
        page.wait_for_function("n => document.querySelector('#map-player')?.innerText.includes(n + ' — water')", arg=name, timeout=30_000)
        # the legend filters: a click on a category hides its points
        page.locator("#library-map .legend .traces").filter(has_text="explosion (14)").click()
        page.wait_for_function("""() => document.querySelector('#library-map .js-plotly-plot')._fullData
                                     .find(t => t.name.startsWith('explosion ')).visible === 'legendonly'""", timeout=10_000)
        # it plays, by itself: a media element was started and its time moved on (or it already ended)
        page.wait_for_function("() => window.__playing && (window.__playing.currentTime > 0 || window.__playing.ended)", timeout=15_000)
        page.screenshot(path=str(tmp_path / "map.png"))
        shutil.copyfile(tmp_path / "map.png", os.environ.get("SOUNDALIKE_MAP_SCREENSHOT", str(tmp_path / "map-copy.png")))


HIDE_AISFX = "import runpy, sys; sys.modules['aisfx'] = None; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')"


def test_requirements_only_install_loads_panns_at_start_up_and_says_loading_meanwhile(browser, tmp_path):
    """The hosted path: a Space installs only requirements.txt, so aisfx is missing (hidden here the
    way Python marks a module unavailable) and `auto` downloads PANNs at start-up. The UI serves at
    once and says "loading" until the download (held back here until the page has been checked)
    ends; then it names the model. With no network at all it stays up and says why."""
    import functools
    import http.server
    import sys
    import threading

    from search_core.embedders.panns import build_cnn14

    import numpy as np
    import torch

    ckpt_dir = tmp_path / "zenodo"
    ckpt_dir.mkdir()
    torch.save({"model": build_cnn14().state_dict(), "sampler": {"indexes": np.arange(3)}}, ckpt_dir / "Cnn14_mAP=0.431.pth")
    release = threading.Event()

    class Held(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            release.wait(120)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Held, directory=str(ckpt_dir)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    argv = [sys.executable, "-c", HIDE_AISFX]
    space = dict(SPACE_ID="someone/soundalike", SOUNDALIKE_MODEL="auto", PANNS_DATA_DIR=str(tmp_path / "panns_home"))
    try:
        url_ckpt = f"http://127.0.0.1:{httpd.server_address[1]}/Cnn14_mAP%3D0.431.pth"
        # the held download must outlast the page check, however slow the machine: a long socket timeout
        with running_app(tmp_path / "data", argv=argv, wait_model=False, PANNS_URL=url_ckpt, SOUNDALIKE_DOWNLOAD_TIMEOUT="300",
                         **space) as url:
            page = browser.new_page()
            page.goto(url)
            assert "Loading the model" in wait_header(page, "Loading the model")
            release.set()
            header = wait_header(page, "· 0 sounds in 0 categories", timeout=120_000)  # the page updates by itself
            assert "panns-cnn14 · AudioSet sound tagger" in header
        assert (tmp_path / "panns_home" / "Cnn14_mAP=0.431.pth").is_file()
    finally:
        httpd.shutdown()
    # no network, no aisfx: the app serves and says why, in one line and the details
    with running_app(tmp_path / "data2", argv=argv, PANNS_URL="http://127.0.0.1:9/Cnn14_mAP%3D0.431.pth",
                     **{**space, "PANNS_DATA_DIR": str(tmp_path / "empty_home")}) as url:
        page = browser.new_page()
        page.goto(url)
        header = wait_header(page, "No model is available")
        page.locator("#header summary").click()
        page.get_by_text("aisfx is not installed").wait_for(timeout=10_000)
        text = page.locator("body").inner_text()
        assert "Could not download the PANNs Cnn14 checkpoint" in text and str(tmp_path) not in text


def test_live_tab_shows_detections_while_a_fake_microphone_plays_a_recording(browser, tmp_path, sample_settings):
    """Chromium's fake microphone plays a built recording (4 bundled sounds over a quiet bed); the
    Live tab streams it to the app, which reports each library sound while it plays."""
    import soundfile as sf

    from benchmarks.mixes import build_mix
    from search_core.audio import load_audio

    data = tmp_path / "data"
    shutil.copytree(sample_settings.data_dir, data)
    truth = build_mix(tmp_path / "gameplay.ogg", minutes=0.75, clips=4, seed=22)
    wav = tmp_path / "microphone.wav"
    sf.write(wav, load_audio(tmp_path / "gameplay.ogg", 48000).samples, 48000, subtype="PCM_16")
    names = [ins["name"] for ins in truth["insertions"]]
    mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
    # Chromium shares the app's 2 cores here. Every numeric pool sized for the whole machine (torch,
    # OpenMP, BLAS: 2 threads each) then contends with it and the session's worker falls behind
    # (measured: 15 s of a minute skipped with the defaults; with torch alone at one thread, 22 s
    # skipped in one CI run of five); one thread each keeps up, as in the live benchmark's
    # concurrent streams, where only that setting kept real time
    one = {k: "1" for k in ("SOUNDALIKE_TORCH_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    with running_app(data, **one) as url:
        with_mic = browser.browser_type.launch(executable_path=CHROMIUM, args=ARGS + mic)  # the module's Playwright
        try:
            context = with_mic.new_context(permissions=["microphone"], viewport={"width": 1500, "height": 1100})
            page = context.new_page()
            page.goto(url)
            wait_header(page, "· 207 sounds in 16 categories")
            page.get_by_role("tab", name="Live").click()
            page.locator("#live-mic").get_by_role("button", name=re.compile("record", re.I)).first.click()
            # two of the inserted sounds reported while the recording plays (it loops every 45 s; the
            # first sound may be under way before the stream reaches the app, and with the browser on
            # the same machine some of the microphone's chunks never reach it: Gradio keeps only the
            # newest chunk while it is busy; the status line says how much). In one fresh-clone CI
            # run of the eleventh session the worker had heard only 9 s after 150 s: the first chunk's
            # handler built the landmark index (3-6 s of chunks lost) and the app's start-up warm-up
            # computed levels beside the session on the 2 cores. Both fixed (the index is built by
            # the warm-up or the session's worker, and the warm-up waits while a session runs); an
            # in-process run of this session under a full-load neighbour then caught up within 40 s
            # with nothing skipped. 180 s leaves room for a slow machine, within the session's 300
            try:
                page.wait_for_function("ns => ns.filter(n => (document.querySelector('#live-table')?.innerText || '').includes(n)).length >= 2",
                                       arg=names, timeout=180_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "live-timeout.png"), full_page=True)
                raise
            marked = page.locator("#live-timeline .live-detection")
            seen = page.locator("#live-table").inner_text() + "\n" + page.locator("#live-status").inner_text()  # says why, if not
            assert marked.count() >= 2, seen
            assert {marked.nth(i).get_attribute("data-name") for i in range(marked.count())} <= set(names), seen  # nothing else
            assert "library sound" in page.locator("#live-status").inner_text()
            assert page.locator("#live-timeline .live-sound").count() >= 2  # the category layer
            assert page.locator("#live-chart .live-count").count() >= 1
            status = page.locator("#live-status").inner_text()
            print("live status:", status)
            # whether this machine kept up is the live benchmark's figure, not this test's; what the test
            # holds is that falling behind is said, with how much, rather than hidden
            assert re.search(r"Listening: \d+:\d\d heard", status), status
            if "skipped" in status:
                assert re.search(r"fell behind: \d+ s of audio skipped", status), status
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            shutil.copyfile(tmp_path / "live.png", os.environ.get("SOUNDALIKE_LIVE_SCREENSHOT", str(tmp_path / "copy-live.png")))
        finally:
            with_mic.close()
