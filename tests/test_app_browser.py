"""End to end in real headless Chromium (Debian's), driven by Playwright: index the bundled set from
the Indexing tab, upload a sample clip on the Search tab, hear K results with that clip first."""
from __future__ import annotations

import os
import re
import shutil

import pytest

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


def test_index_then_search_in_the_browser(browser, tmp_path):
    query = tmp_path / "my query.ogg"  # a visitor's copy of a bundled clip
    shutil.copyfile(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg", query)
    with running_app(tmp_path / "data") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Not "networkidle": Playwright never sees some of the lazily loaded component chunks of the
        # scan tab finish, so the page never counts as idle; wait for what the test needs instead.
        page.goto(url)
        page.get_by_text("Library: 0 sounds").wait_for(timeout=60_000)
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
        page.get_by_text("Library: 207 sounds").wait_for(timeout=60_000)
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
