"""The UI's handlers called directly, with real audio, real models and real Milvus Lite files."""
from __future__ import annotations

import shutil
import zipfile

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from search_core.ui import ANY, K_MAX, Handlers
from search_core.service import Service

from .conftest import SAMPLE_DATA, synth


def parts(out: list) -> dict:
    """The search outputs by name: status, table, the 20 slots and their players, the query's vector, result ids."""
    return {"status": out[0], "table": out[1], "slots": out[2 : 2 + K_MAX], "players": out[2 + K_MAX : 2 + 2 * K_MAX],
            "query": out[-2], "ids": out[-1]}


@pytest.fixture
def sample_handlers(sample_settings, tmp_path):
    """Handlers over a copy of the pre-indexed sample library (read-mostly tests)."""
    data = tmp_path / "sample_copy"
    shutil.copytree(sample_settings.data_dir, data)
    return Handlers(Service(sample_settings.with_(data_dir=data)))


@pytest.fixture
def empty_handlers(settings):
    return Handlers(Service(settings))


def test_search_returns_k_players_table_and_the_query_for_the_map(sample_handlers):
    query = SAMPLE_DATA / "magic" / "wesnoth_magic-holy-1.ogg"
    out = parts(sample_handlers.search_tab.search(str(query), 4, ANY, None))
    players, table = out["players"], out["table"]["value"]
    assert out["status"].startswith("Top 4 of 207 sounds · **Sounds like: magic — ")
    assert table["rank"].tolist() == [1, 2, 3, 4] and out["table"]["visible"]
    assert players[0]["label"] == "1. wesnoth_magic-holy-1 — magic — 1.00 · percentile 100.0"
    assert players[0]["value"] == str(query) and all(s["visible"] for s in out["slots"][:4])
    assert not any(s["visible"] for s in out["slots"][4:])
    # the readable score: ordered like the scores, within 0-100, and shown in each title
    pct = table["percentile"].tolist()
    assert pct == sorted(pct, reverse=True) and all(0 <= p <= 100 for p in pct)
    assert all(f"percentile {p:.1f}" in pl["label"] for p, pl in zip(pct, players))
    assert out["query"].shape == (512,) and len(out["ids"]) == 4


def test_search_filters_by_category_and_duration(sample_handlers):
    query = SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"
    out = sample_handlers.search_tab.search(str(query), 10, "water", None)
    assert set(out[1]["value"]["category"]) == {"water"}
    out = sample_handlers.search_tab.search(str(query), 10, ANY, 0.5)
    assert (out[1]["value"]["duration"] <= 0.5).all() and len(out[1]["value"]) == 10


def test_search_errors_are_messages(sample_handlers, empty_handlers, tmp_path):
    with pytest.raises(gr.Error, match="Upload or record a sound first"):
        sample_handlers.search_tab.search(None, 5, ANY, None)
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    with pytest.raises(gr.Error, match="notes.wav: not a readable audio file"):
        sample_handlers.search_tab.search(str(text), 5, ANY, None)
    long = tmp_path / "long.wav"
    sf.write(long, synth("tone", 31.0), 22050)
    with pytest.raises(gr.Error, match="the limit is 30 s"):
        sample_handlers.search_tab.search(str(long), 5, ANY, None)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error, match="empty"):
        sample_handlers.search_tab.search(str(empty), 5, ANY, None)
    with pytest.raises(gr.Error, match="index the sample set first"):
        empty_handlers.search_tab.search(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 5, ANY, None)
    # the app keeps serving afterwards
    assert sample_handlers.search_tab.search(str(SAMPLE_DATA / "voice" / "hedgewars_Hello.ogg"), 1, ANY, None)[0].startswith("Top 1 of 207 sounds")


def test_header_and_empty_banner(empty_handlers):
    header, banner, cats, table, timer = empty_handlers.page.refresh()
    assert header.split("\n")[1] == "**aisfx** · sound-effects model, runs offline · **0 sounds** in 0 categories"
    assert banner["visible"] is True and cats["choices"] == [ANY] and table.empty and timer.active is False


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
    out = empty_handlers.indexing_tab.index_files([str(wav), str(zpath)], "my pack", "")
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
        h.indexing_tab.index_files([str(wav)], "", "")
    assert h.service.access.can_write() is False


def test_delete_and_clear_need_the_operator(settings, sounds):
    locked = Handlers(Service(settings))
    locked.service.library.index([sounds])
    with pytest.raises(gr.Error, match="SOUNDALIKE_ADMIN"):
        locked.indexing_tab.clear_library("")
    admin = Handlers(Service(settings.with_(admin_token="s3cret")))
    with pytest.raises(gr.Error):
        admin.indexing_tab.delete_item("x", "wrong")
    item = admin.service.library.items().iloc[0]["id"]
    assert admin.indexing_tab.delete_item(item, "s3cret")[0] == "Deleted 1 item(s)."
    assert admin.indexing_tab.clear_library("s3cret")[0] == "Library cleared."
    assert admin.service.library.count() == 0


def test_map_shows_every_sound_with_the_query_star_and_a_click_plays_that_sound(sample_handlers):
    h = sample_handlers
    query = h.search_tab.search(str(SAMPLE_DATA / "water" / "hedgewars_splash.ogg"), 5, ANY, None)[-2]
    fig, info = h.map_tab.map_view(query)
    traces = {t.name: t for t in fig.data}
    star = traces.pop("★ your query")
    assert sum(len(t.x) for t in traces.values()) == 207 and len(traces) == 16 and info.startswith("**207 sounds** in 16 categories")
    assert "t-SNE" in info and "Your last search is the ★" in info
    # the query is a library sound: its star sits on that sound's point
    water = traces[next(n for n in traces if n.startswith("water "))]
    at = list(water.text).index("hedgewars_splash")
    assert (star.x[0], star.y[0]) == pytest.approx((water.x[at], water.y[at]), abs=1e-3)
    layout = h.service.library_map()
    # a click sends "<layout key>:<row>#<time>": the player gets that very sound
    pick = water.customdata[0]
    row = int(pick.split(":")[1])
    update = h.map_tab.play_from_map(f"{pick}#1700000000000")
    assert update["value"] == str(h.service.media.playable(h.service.library.get(layout.ids[row])["path"]))
    assert update["label"] == f"{layout.names[row]} — water"
    assert "not playable" in h.map_tab.play_from_map(f"{'0' * 16}:{row}#1")["label"]  # a map drawn before the library changed
    assert "not playable" in h.map_tab.play_from_map("query#1")["label"] and "not playable" in h.map_tab.play_from_map("")["label"]


def test_map_layout_is_computed_once_per_library_state_and_saved_beside_it(sample_handlers, tmp_path):
    from search_core.libmap import MapLayout

    service = sample_handlers.service
    shutil.rmtree(service.settings.data_dir / "soundalike.map", ignore_errors=True)  # a copy may carry one
    first = service.library_map()
    assert service.library_map() is first  # cached: opening the tab again computes nothing
    saved = service.settings.data_dir / "soundalike.map" / f"{service.library.collection}.npz"
    assert saved.is_file()
    again = Service(service.settings).library_map()  # a restart reads it back
    assert again.source == "saved" and first.source == "computed" and np.array_equal(again.xy, first.xy) and again.ids == first.ids
    # a saved layout of other files is never trusted
    meta, vecs = service.library.vectors()
    assert MapLayout.load(saved, meta.iloc[:-1], vecs[:-1]) is None
    service.library.delete([first.ids[0]])
    service._changed()
    assert len(service.library_map()) == 206


def test_a_library_of_the_older_schema_is_explained_in_the_app(settings):
    from .conftest import create_schema1_collection

    create_schema1_collection(settings.uri, "library__aisfx", "aisfx", 512)
    h = Handlers(Service(settings))
    header = h.page.header_md()
    assert "The library cannot be opened" in header and "Re-index it" in header and "drop --yes" in header
    assert h.page.refresh()[1]["visible"] is False  # no crash, no empty-library banner


def test_more_like_this_replaces_the_results_with_the_items_neighbours(sample_handlers):
    out = parts(sample_handlers.search_tab.search(str(SAMPLE_DATA / "explosion" / "chromium_exploBig.ogg"), 5, ANY, None))
    ids = out["ids"]
    more = parts(sample_handlers.search_tab.more_like_this(ids, 1, 5))
    second = out["table"]["value"].iloc[1]["name"]
    assert more["status"].startswith(f"More like **{second}**") and "Sounds like: " in more["status"]
    assert ids[1] not in more["ids"] and len(more["ids"]) == 5
    assert all(s["visible"] for s in more["slots"][:5]) and more["players"][0]["value"]
    with pytest.raises(gr.Error, match="Search first"):
        sample_handlers.search_tab.more_like_this([], 0, 5)


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
    html = visitor.indexing_tab.find_dupes(DEFAULT_THRESHOLD)
    # the copy's group, and the bundle's one pair of the same recording (supertux_bigjump is
    # supertux_jump at 0.94 speed; which of the two is kept depends on the second each was indexed in)
    assert "2 groups of near-duplicates" in html and "among 208 sounds" in html
    assert html.count("<audio") == 4 and "<b>keep</b> · chromium_exploBig" in html and "copy · boom_copy" in html
    assert "supertux_jump" in html and "supertux_bigjump" in html
    with pytest.raises(gr.Error, match="Deleting is disabled"):
        visitor.indexing_tab.delete_copies(DEFAULT_THRESHOLD, None)
    from search_core.store import Store

    Store.close_all()
    operator = Handlers(Service(sample_settings.with_(data_dir=data, admin=True)))
    out = operator.indexing_tab.delete_copies(DEFAULT_THRESHOLD, None)
    assert out[0].startswith("Deleted 2 extra copies (kept the first of each group): ") and "boom_copy" in out[0]
    assert ("supertux_jump" in out[0]) != ("supertux_bigjump" in out[0])  # one of the pair, not both
    assert "No near-duplicates among 206 sounds" in out[-1]


def test_header_is_one_short_line_and_a_public_demo_shows_no_server_path(settings, tmp_path):
    """Offline, `auto` falls back to aisfx: the line says so in a few words; the reason and the
    operator's how-to (with the checkpoint's path) are in the collapsed details, redacted in public."""
    panns = tmp_path / "panns_home"
    base = settings.with_(model="auto", allow_download=True, panns_url="http://127.0.0.1:9/Cnn14_mAP%3D0.431.pth",
                          panns_data_dir=panns, download_timeout=2)
    private = Handlers(Service(base)).page.header_md()
    title, line, _, details = private.split("\n", 3)
    assert title == "# Soundalike" and details.startswith("<details")
    assert line == "**aisfx** · sound-effects model, runs offline · **0 sounds** in 0 categories · _PANNs unavailable_"
    assert "Could not download the PANNs Cnn14 checkpoint" in details and str(panns) in details
    public = Handlers(Service(base.with_(public=True))).page.header_md()
    assert public.split("\n")[1] == line and "Could not download" in public
    assert str(tmp_path) not in public and "[server path]" in public and "/home" not in public


def test_redaction_keeps_urls_and_removes_server_paths():
    from search_core.status import redact_paths

    text = ("from https://zenodo.org/record/1/files/Cnn14.pth?download=1 (no network). Put it at /srv/app/panns/Cnn14.pth, "
            "or ~/panns/x.pth; library data/soundalike.db; not mydata/y")
    assert redact_paths(text, ("data",)) == ("from https://zenodo.org/record/1/files/Cnn14.pth?download=1 (no network). "
                                             "Put it at [server path], or [server path]; library [server path]; not mydata/y")


def test_the_scan_threshold_slider_starts_at_the_default_and_reaches_below_it(settings):
    """The app's slider is how a visitor lowers the threshold to find more altered copies: its
    default is the scan's, and its range reaches well under it (the README's advice, 0.4 and 0.35)."""
    from app import build_ui
    from search_core.scan import DEFAULT_THRESHOLD

    demo = build_ui(Service(settings))
    sliders = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and str(b.label).startswith("Threshold (how exact")]
    assert len(sliders) == 1
    s = sliders[0]
    assert s.value == DEFAULT_THRESHOLD and s.minimum <= 0.2 < DEFAULT_THRESHOLD < s.maximum
