"""The UI's handlers called directly, with real audio, real models and real Milvus Lite files."""
from __future__ import annotations

import shutil
import zipfile

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from app import ANY, K_MAX, Handlers
from search_core.service import Service

from .conftest import SAMPLE_DATA, synth


def parts(out: list) -> dict:
    """The search outputs by name: status, table, the 20 slots and their players, map, result ids."""
    return {"status": out[0], "table": out[1], "slots": out[2 : 2 + K_MAX], "players": out[2 + K_MAX : 2 + 2 * K_MAX],
            "scatter": out[-3], "map_table": out[-2], "ids": out[-1]}


@pytest.fixture
def sample_handlers(sample_settings, tmp_path):
    """Handlers over a copy of the pre-indexed sample library (read-mostly tests)."""
    data = tmp_path / "sample_copy"
    shutil.copytree(sample_settings.data_dir, data)
    return Handlers(Service(sample_settings.with_(data_dir=data)))


@pytest.fixture
def empty_handlers(settings):
    return Handlers(Service(settings))


def test_search_returns_k_players_table_and_map(sample_handlers):
    query = SAMPLE_DATA / "magic" / "wesnoth_magic-holy-1.ogg"
    out = parts(sample_handlers.search(str(query), 4, ANY, None))
    players, scatter = out["players"], out["scatter"]
    assert out["status"].startswith("Top 4 of 207 sounds · **Sounds like: magic — ")
    assert out["table"]["value"]["rank"].tolist() == [1, 2, 3, 4] and out["table"]["visible"]
    assert players[0]["label"] == "1. wesnoth_magic-holy-1 — magic — 1.00"
    assert players[0]["value"] == str(query) and all(s["visible"] for s in out["slots"][:4])
    assert not any(s["visible"] for s in out["slots"][4:])
    assert (scatter["label"] == "★ your query").sum() == 1 and len(scatter) == 208
    assert len(out["map_table"]) == 207 and len(out["ids"]) == 4


def test_search_filters_by_category_and_duration(sample_handlers):
    query = SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"
    out = sample_handlers.search(str(query), 10, "water", None)
    assert set(out[1]["value"]["category"]) == {"water"}
    out = sample_handlers.search(str(query), 10, ANY, 0.5)
    assert (out[1]["value"]["duration"] <= 0.5).all() and len(out[1]["value"]) == 10


def test_search_errors_are_messages(sample_handlers, empty_handlers, tmp_path):
    with pytest.raises(gr.Error, match="Upload or record a sound first"):
        sample_handlers.search(None, 5, ANY, None)
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    with pytest.raises(gr.Error, match="notes.wav: not a readable audio file"):
        sample_handlers.search(str(text), 5, ANY, None)
    long = tmp_path / "long.wav"
    sf.write(long, synth("tone", 31.0), 22050)
    with pytest.raises(gr.Error, match="the limit is 30 s"):
        sample_handlers.search(str(long), 5, ANY, None)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error, match="empty"):
        sample_handlers.search(str(empty), 5, ANY, None)
    with pytest.raises(gr.Error, match="index the sample set first"):
        empty_handlers.search(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 5, ANY, None)
    # the app keeps serving afterwards
    assert sample_handlers.search(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 1, ANY, None)[0].startswith("Top 1 of 207 sounds")


def test_header_and_empty_banner(empty_handlers):
    header, banner, cats, table = empty_handlers.refresh()
    assert "**Model:** `aisfx`" in header and "0 sounds" in header
    assert banner["visible"] is True and cats["choices"] == [ANY] and table.empty


def test_index_uploads_files_and_zip_with_generated_names(empty_handlers, tmp_path):
    wav = tmp_path / "My Boom!.wav"
    sf.write(wav, synth("noise", 1.0), 22050)
    zpath = tmp_path / "pack.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        buf = tmp_path / "chirp.flac"
        sf.write(buf, synth("chirp", 1.0), 22050)
        z.write(buf, "../../escape/chirp.flac")
        z.writestr("readme.txt", "not audio")
        z.writestr("fake.wav", b"RIFF not really")
    out = empty_handlers.index_files([str(wav), str(zpath)], "my pack", "")
    text = out[0]
    assert "added 2" in text and "rejected: fake.wav" in text, text
    upload_dir = empty_handlers.service.settings.upload_dir.resolve()
    stored = sorted(p.name for p in upload_dir.iterdir())
    assert len(stored) == 2 and all(len(n.split(".")[0]) == 64 for n in stored)  # sha256 names
    assert not (tmp_path / "escape").exists()
    stats = empty_handlers.service.stats()
    assert stats["labels"] == {"my pack": 2}
    names = set(empty_handlers.service.library.items()["name"])
    assert names == {"My Boom_", "chirp"}


def test_public_mode_refuses_uploads_but_allows_sample_set(settings, tmp_path):
    h = Handlers(Service(settings.with_(public=True)))
    wav = tmp_path / "a.wav"
    sf.write(wav, synth("tone", 1.0), 22050)
    with pytest.raises(gr.Error, match="disabled on this public demo"):
        h.index_files([str(wav)], "", "")
    assert h.service.can_write() is False


def test_delete_and_clear_need_the_operator(settings, sounds):
    locked = Handlers(Service(settings))
    locked.service.library.index([sounds])
    with pytest.raises(gr.Error, match="SOUNDALIKE_ADMIN"):
        locked.clear_library("")
    admin = Handlers(Service(settings.with_(admin_token="s3cret")))
    with pytest.raises(gr.Error):
        admin.delete_item("x", "wrong")
    item = admin.service.library.items().iloc[0]["id"]
    assert admin.delete_item(item, "s3cret")[0] == "Deleted 1 item(s)."
    assert admin.clear_library("s3cret")[0] == "Library cleared."
    assert admin.service.library.count() == 0


def test_map_row_plays_only_library_files(sample_handlers):
    frame, table = sample_handlers.map_data()
    assert len(frame) == 207 and np.isfinite(frame[["x", "y"]].to_numpy()).all()

    class Evt:
        index = (3, 0)

    update = sample_handlers.play_from_map(table, Evt())
    assert update["value"].startswith(str(SAMPLE_DATA))


def test_only_media_roots_are_playable(sample_handlers, tmp_path):
    service = sample_handlers.service
    assert service.playable("/etc/passwd") is None
    assert service.playable(str(service.settings.data_dir / "soundalike.db")) is None
    assert service.playable(str(SAMPLE_DATA / ".." / "app.py")) is None
    assert service.playable(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg")) is not None
    assert service.audio_for_id("../../etc/passwd") is None


def test_topk_change_without_a_sound_does_nothing(sample_handlers):
    out = sample_handlers.research(None, 7, ANY, None)
    assert len(out) == 2 + 2 * K_MAX + 3 and all(isinstance(o, dict) and o.get("__type__") == "update" and len(o) == 1 for o in out)
    out = sample_handlers.research(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 7, ANY, None)
    assert out[0].startswith("Top 7 of 207 sounds")


def test_long_search_hits_play_the_part_that_matched(sample_handlers):
    """A long library file (10 s of rain) found by a 2.4 s piece of its middle plays that part."""
    from search_core.audio import load_audio

    rain = SAMPLE_DATA / "ambience_nature" / "supertux_rain.ogg"
    clip = load_audio(rain, 44100)
    piece = sample_handlers.service.settings.data_dir.parent / "rain_piece.wav"
    sf.write(piece, clip.samples[int(5.0 * 44100) : int(7.4 * 44100)], 44100)
    first = parts(sample_handlers.search(str(piece), 3, ANY, None))["players"][0]
    assert first["label"].startswith("1. supertux_rain — ambience_nature") and " of 0:10" in first["label"]
    assert first["value"] != str(rain) and sf.info(first["value"]).duration == pytest.approx(2.4, abs=0.05)


def test_scan_and_find_in_the_app(sample_handlers, tmp_path):
    from benchmarks.mixes import build_mix

    mix = tmp_path / "mix.ogg"
    truth = build_mix(mix, minutes=0.5, clips=3, seed=31)
    status, fig, table, moments, moment, clip = sample_handlers.scan(str(mix), 0.85, None, progress=lambda *a, **k: None)
    assert status.startswith("**3 library sounds** found in mix.ogg (0:30)")
    assert list(table["value"]["sound"]) == [i["name"] for i in truth["insertions"]]
    assert fig.axes and len(moments) == 3
    assert moment["visible"] and sf.info(moment["value"]).duration == pytest.approx(moments[0]["end"] - moments[0]["start"] + 0.4, abs=0.05)
    assert clip["value"].endswith(truth["insertions"][0]["file"].split("/")[-1])
    query = SAMPLE_DATA / truth["insertions"][1]["file"]
    status, fig, table, moments, moment, clip = sample_handlers.scan(str(mix), 0.85, str(query), progress=lambda *a, **k: None)
    assert status.startswith(f"**{query.stem}** occurs 1 time in mix.ogg")
    assert abs(moments[0]["start"] - truth["insertions"][1]["start"]) < 0.3 and clip["value"] == str(query)
    with pytest.raises(gr.Error, match="at least 2.4 s"):
        sample_handlers.scan(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 0.85, None, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="Upload or record a recording first"):
        sample_handlers.scan(None, 0.85, None)


def test_a_library_of_the_older_schema_is_explained_in_the_app(settings):
    from .conftest import create_schema1_collection

    create_schema1_collection(settings.uri, "library__aisfx", "aisfx", 512)
    h = Handlers(Service(settings))
    header = h.header_md()
    assert "The library cannot be opened" in header and "Re-index it" in header and "drop --yes" in header
    assert h.refresh()[1]["visible"] is False  # no crash, no empty-library banner


def test_more_like_this_replaces_the_results_with_the_items_neighbours(sample_handlers):
    out = parts(sample_handlers.search(str(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg"), 5, ANY, None))
    ids = out["ids"]
    more = parts(sample_handlers.more_like_this(ids, 1, 5))
    second = out["table"]["value"].iloc[1]["name"]
    assert more["status"].startswith(f"More like **{second}**") and "Sounds like: " in more["status"]
    assert ids[1] not in more["ids"] and len(more["ids"]) == 5
    assert all(s["visible"] for s in more["slots"][:5]) and more["players"][0]["value"]
    with pytest.raises(gr.Error, match="Search first"):
        sample_handlers.more_like_this([], 0, 5)


def test_duplicates_section_lists_groups_with_players_and_deletes_copies_for_the_operator(sample_settings, tmp_path):
    from search_core.dupes import DEFAULT_THRESHOLD

    data = tmp_path / "data"
    shutil.copytree(sample_settings.data_dir, data)
    copy = tmp_path / "mine" / "boom_copy.ogg"
    copy.parent.mkdir()
    y, rate = sf.read(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg")
    sf.write(copy, 0.5 * y, rate, format="OGG", subtype="VORBIS")  # -6 dB, re-encoded
    visitor = Handlers(Service(sample_settings.with_(data_dir=data)))
    visitor.service.library.index([copy])
    html = visitor.find_dupes(DEFAULT_THRESHOLD)
    assert "1 group of near-duplicates" in html and "among 208 sounds" in html
    assert html.count("<audio") == 2 and "<b>keep</b> · chromium_exploBig" in html and "copy · boom_copy" in html
    with pytest.raises(gr.Error, match="Deleting is disabled"):
        visitor.delete_copies(DEFAULT_THRESHOLD, None)
    from search_core.store import Store

    Store.close_all()
    operator = Handlers(Service(sample_settings.with_(data_dir=data, admin=True)))
    out = operator.delete_copies(DEFAULT_THRESHOLD, None)
    assert out[0] == "Deleted 1 extra copy (kept the first of each group): boom_copy"
    assert "No near-duplicates among 207 sounds" in out[-1]
