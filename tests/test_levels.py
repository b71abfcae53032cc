"""Background levels kept on disk (levels.py): computed once per template, read back by another
scanner of the library (another process does the same: it reads the file), keyed by the
template's content, and a damaged file costs nothing but a recomputation."""
from __future__ import annotations

import pytest

from search_core import background
from search_core.levels import FILE_NAME, LevelFile, template_key, warm
from search_core.library import Library
from search_core.scan import Scanner
from search_core.warped import make_warp_template

from .conftest import synth


def test_levels_are_computed_once_and_another_scanner_reads_them_back(settings, sounds):
    lib = Library(settings)
    lib.index([sounds])
    segments = lib.store.count_segments()
    first = Scanner(lib)
    assert warm(first) == (segments, segments)  # a new library: every level computed
    kept = (settings.data_dir / FILE_NAME).read_text().splitlines()
    assert len(kept) == segments

    second = Scanner(lib)  # fresh caches, as a monitor started later has
    assert warm(second) == (segments, 0)  # nothing computed again
    for row in list(lib.store.iterate(("path",)))[:3]:
        tpl = second.verifier.template(row["path"])
        assert tpl.background == pytest.approx(background.level(make_warp_template_of(row["path"])), abs=1e-6)
    assert len((settings.data_dir / FILE_NAME).read_text().splitlines()) == segments  # no line twice


def make_warp_template_of(path: str):
    from pathlib import Path

    from search_core.audio import load_audio
    from search_core.verifiers import RATE

    return make_warp_template(load_audio(Path(path), RATE).samples)


def test_a_level_belongs_to_its_template_and_a_damaged_file_is_read_around(tmp_path):
    chirp, tone = make_warp_template(synth("chirp")), make_warp_template(synth("tone"))
    assert template_key(chirp) == template_key(make_warp_template(synth("chirp")))
    assert template_key(chirp) != template_key(tone)
    assert template_key(chirp) != template_key(make_warp_template(synth("chirp", seed=1)))

    path = tmp_path / "data" / FILE_NAME
    LevelFile(path).put(template_key(chirp), 0.25)
    with open(path, "a") as f:  # another writer's torn line, and garbage
        f.write("not a level\n" + template_key(tone)[:20])
    again = LevelFile(path)
    assert again.get(template_key(chirp)) == 0.25
    assert again.get(template_key(tone)) is None and len(again) == 1


def test_a_serving_app_warms_its_librarys_levels_in_the_background(settings, sounds):
    import time

    from search_core.service import Service

    Library(settings).index([sounds])
    segments = Library(settings).store.count_segments()
    service = Service(settings)
    service.files.start_housekeeping()  # a serving app
    service.loader.load_in_background().join(120)
    path = settings.data_dir / FILE_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not path.exists() or len(path.read_text().splitlines()) < segments):
        time.sleep(0.2)
    assert len(path.read_text().splitlines()) == segments  # with no scan run
    service.files.housekeeper.stop()


def test_a_library_that_cannot_be_read_is_a_warning_and_not_a_failure(settings, sounds, capsys):
    """A monitor follows its source anyway, and a serving app keeps serving: scans prepare the
    templates they meet instead (try_warm, as Monitor.run and the app's background thread call it)."""
    from search_core.levels import try_warm, warm_in_background

    lib = Library(settings)
    lib.index([sounds])
    scanner = Scanner(lib)
    lib.store.drop()  # the collection is gone under the scanner (another process dropped the library)
    assert try_warm(scanner) is False
    assert "could not be prepared ahead" in capsys.readouterr().err
    warm_in_background(scanner).join(60)
    assert "could not be prepared ahead" in capsys.readouterr().err
    assert not (settings.data_dir / FILE_NAME).exists()  # nothing half-written


def test_the_warm_up_builds_the_landmark_index_first_and_waits_while_real_time_work_runs(settings, sounds):
    """The app's warm-up waits while a Live session runs (on 2 cores it starved the session's
    worker): levels are computed only once `busy()` is false again. The landmark index, which
    every session needs first, is built before it waits."""
    import threading
    import time

    from search_core.levels import warm_in_background

    lib = Library(settings)
    lib.index([sounds])
    segments = lib.store.count_segments()
    scanner = Scanner(lib)
    busy = threading.Event()
    busy.set()
    thread = warm_in_background(scanner, busy=busy.is_set)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(scanner.landmarks.index.files) < lib.count():
        time.sleep(0.05)
    assert len(scanner.landmarks.index.files) == lib.count()  # built while busy
    time.sleep(1.5)
    assert thread.is_alive() and len(scanner.verifier.levels) == 0  # waiting: no level computed
    busy.clear()
    thread.join(120)
    assert not thread.is_alive() and len(scanner.verifier.levels) == segments


def test_landmark_refreshes_asked_at_once_build_the_index_once(settings, sounds):
    """The warm-up, a scan and a live session may ask for the index together: the later ones wait
    for the first and find it built, rather than decoding the library beside it."""
    import threading

    lib = Library(settings)
    lib.index([sounds])
    scanner = Scanner(lib)
    made: list[int] = []
    threads = [threading.Thread(target=lambda: made.append(scanner.landmarks.refresh())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(made) == [0, 0, lib.count()]  # each file decoded once
    assert len(scanner.landmarks.index.files) == lib.count()


def test_a_live_scanner_is_made_at_once_and_follows_the_library_at_its_first_step(settings, sounds):
    """A Live session is made inside the browser's stream handler, whose chunks are lost while it
    runs: making its scanner must not build the landmark index; its first step does."""
    import numpy as np

    from search_core.monitor.live import SOURCE_RATE, LiveScanner

    lib = Library(settings)
    lib.index([sounds])
    scanner = Scanner(lib)
    live = LiveScanner(scanner)
    assert scanner.landmarks.index.files == []
    live.feed(np.zeros(SOURCE_RATE, np.float32))  # one second: past a step
    assert live.stats.steps >= 1 and len(scanner.landmarks.index.files) == lib.count()
