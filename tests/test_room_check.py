"""The room check (room_check.py, the `warped-room` verifier): a reverberant copy of a library sound
under music is found as the original through a room, and another take of the same kind, through
the same room, is not."""
from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from benchmarks.mixes import write_ogg
from benchmarks.wild_mixes import RATE as MIX_RATE, procedural_music, room_impulse
from search_core import room_check
from search_core.audio import load_audio
from search_core.find import find
from search_core.scan import DEFAULT_THRESHOLD

from .conftest import SAMPLE_DATA

AT = 2.0  # seconds into the recording where each sound is put
SNR_DB = 8.0


def _in_a_room_over_music(path, clip: np.ndarray, seed: int) -> None:
    """`clip` (at MIX_RATE) through the wild benchmark's small room, SNR_DB over procedural music."""
    rng = np.random.default_rng(seed)
    wet = fftconvolve(clip, room_impulse(rng))
    wet = 0.5 * wet / np.max(np.abs(wet))
    music = procedural_music(AT + len(wet) / MIX_RATE + 2.0, rng)
    music = music / np.sqrt(np.mean(music**2)) * np.sqrt(np.mean(wet[np.abs(wet) > 0.01 * 0.5] ** 2)) * 10 ** (-SNR_DB / 20)
    y = music.astype(np.float32)
    a = int(AT * MIX_RATE)
    y[a : a + len(wet)] += wet
    write_ogg(path, y, MIX_RATE)


def test_a_reverberant_copy_under_music_is_found_through_the_room(tmp_path, settings):
    query = SAMPLE_DATA / "creature" / "wesnoth_wolf-growl-2.ogg"
    rec = tmp_path / "room.ogg"
    _in_a_room_over_music(rec, load_audio(query, MIX_RATE).samples, seed=3)
    found = find(query, rec, settings.with_(verifier="warped-room")).matches
    assert len(found) == 1, [m.as_dict() for m in found]
    m = found[0]
    assert abs(m.start - AT) < 0.05 and m.change.get("channel") == "room" and m.score >= DEFAULT_THRESHOLD
    assert m.change["speed"] == 1.0 and m.change["pitch_semitones"] == 0.0
    # the room is what found it: the warped score alone stays under the room's
    plain = find(query, rec, settings.with_(verifier="warped-bg"), threshold=0.05).matches
    assert max((x.score for x in plain if abs(x.start - AT) < 0.2), default=0.0) < m.score


def test_another_take_through_the_same_room_is_not_the_library_sound(tmp_path, settings):
    """Two growls of one wolf, recorded apart: the second, through the room that finds a copy of
    the first, is not that sound."""
    query = SAMPLE_DATA / "creature" / "wesnoth_wolf-growl-2.ogg"
    for other in ("wesnoth_wolf-growl-1", "wesnoth_wolf-growl-3"):
        rec = tmp_path / f"{other}.ogg"
        _in_a_room_over_music(rec, load_audio(SAMPLE_DATA / "creature" / f"{other}.ogg", MIX_RATE).samples, seed=3)
        assert find(query, rec, settings.with_(verifier="warped-room")).matches == [], other


def test_the_room_check_confirms_an_alignment_and_never_moves_it():
    """The response must begin where the alignment puts the sound: the same copy, asked about
    half a second away, scores nothing; and a silent stretch never reaches the check."""
    clip = load_audio(SAMPLE_DATA / "creature" / "wesnoth_wolf-growl-2.ogg", MIX_RATE).samples
    dry = room_check.dry_of(clip, MIX_RATE)
    wet = np.zeros(int(6 * MIX_RATE), np.float32)
    copy = fftconvolve(clip, room_impulse(np.random.default_rng(0)))
    a = int(AT * MIX_RATE)
    wet[a : a + copy.size] += (0.5 * copy / np.max(np.abs(copy))).astype(np.float32)
    assert room_check.room_score(dry, wet, MIX_RATE, AT) > 0.8
    assert room_check.room_score(dry, wet, MIX_RATE, AT + 0.5) == 0.0
    assert room_check.room_score(dry, wet, MIX_RATE, AT - 0.5) == 0.0
    assert room_check.room_score(dry, np.zeros_like(wet), MIX_RATE, AT) == 0.0
    assert room_check.dry_of(np.zeros(1000, np.float32), room_check.RATE) is None
