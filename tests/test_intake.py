"""The monitor's read-ahead (monitor/intake.py) on a real decoded file: while the scan is busy the
audio keeps arriving and is stamped when it arrives; the scan then takes it as one piece; nothing
is lost, reordered or repeated; stop ends both sides; a source's error reaches the scan."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from search_core.monitor.intake import Arrival, Intake
from search_core.monitor.live import SOURCE_RATE
from search_core.monitor.sources import Gap, open_source


@pytest.fixture()
def recording(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "noise.wav"
    sf.write(path, (0.1 * rng.standard_normal(SOURCE_RATE * 6)).astype(np.float32), SOURCE_RATE)
    return path


def test_audio_that_arrives_during_a_slow_step_is_taken_as_one_piece_with_its_arrival_times(recording):
    stop = threading.Event()
    took, waited = [], []
    for item in Intake(open_source(str(recording), stop=stop), SOURCE_RATE, stop, most=1.5):
        assert isinstance(item, Arrival)
        took.append(item)
        waited.append(time.time() - item.stamps[-1][1])  # how long its newest chunk had waited
        time.sleep(0.3)  # a scan step slower than the source
    audio = np.concatenate([a.audio for a in took])
    assert np.array_equal(audio, sf.read(recording, dtype="float32")[0])  # all of it, in order, once
    seconds = [len(a.audio) / SOURCE_RATE for a in took]
    assert max(seconds) <= 1.5 + 1e-6 and max(seconds) > 0.25  # chunks joined while the scan was busy
    assert len(took) < 6 / 0.25  # fewer pieces than the source's chunks
    for a in took:  # each chunk's place in its piece, and arrival times in order
        assert a.stamps[-1][0] == pytest.approx(len(a.audio) / SOURCE_RATE)
        assert [w for _, w in a.stamps] == sorted(w for _, w in a.stamps)
    assert max(waited) > 0.1  # stamped when read, not when the scan took it


def test_gaps_pass_in_order_and_a_source_error_reaches_the_scan():
    def source():
        yield np.ones(100, np.float32)
        yield Gap(2.0, "the stream ended")
        yield np.zeros(100, np.float32)
        raise OSError("decoder crashed")

    stop = threading.Event()
    seen = []
    with pytest.raises(OSError, match="decoder crashed"):
        for item in Intake(source(), SOURCE_RATE, stop):
            seen.append(item)
    assert [type(x).__name__ for x in seen] == ["Arrival", "Gap", "Arrival"]
    assert seen[0].audio[0] == 1.0 and seen[2].audio[0] == 0.0


def test_stop_ends_a_full_intake_and_closes_its_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(int(0.25 * SOURCE_RATE), np.float32)
        finally:
            closed.set()

    stop = threading.Event()
    intake = Intake(endless(), SOURCE_RATE, stop, limit=2.0)
    time.sleep(0.3)  # the queue fills; the reader waits for room
    assert 1.75 <= intake.waiting <= 2.0 + 1e-9
    began = time.monotonic()
    for n, _ in enumerate(intake):
        if n == 2:
            stop.set()
    assert time.monotonic() - began < 3.0
    assert closed.wait(3.0)  # the source's own cleanup ran (ffmpeg is killed and waited for there)
