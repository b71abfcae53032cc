import numpy as np
import pytest
import soundfile as sf

from search_core.indexer import collect
from search_core.library import Library
from search_core.store import StoreError

from .conftest import synth


def test_index_search_self_first_and_skip_bad_files(settings, sounds):
    (sounds / "tone" / "broken.wav").write_bytes(b"RIFF....WAVEgarbage")
    (sounds / "tone" / "empty.ogg").write_bytes(b"")
    (sounds / "notes.txt").write_text("not picked up: not an audio extension")
    lib = Library(settings)
    calls = []
    report = lib.index([sounds], progress=lambda done, total, name: calls.append((done, total)))
    assert len(report.added) == 12 and report.updated == [] and report.unchanged == []
    assert sorted(f for f, _ in report.failed) == ["broken.wav", "empty.ogg"]
    assert dict(report.failed)["empty.ogg"] == "file is empty (0 bytes)"
    assert calls[-1] == (14, 14)
    assert lib.count() == 12

    query = sounds / "chirp" / "chirp_1.wav"
    frame = lib.search(query, 5)
    assert list(frame.columns) == ["rank", "name", "label", "score", "percentile", "duration", "start", "end", "path", "id", "tags"]
    assert frame.iloc[0]["name"] == "chirp_1" and frame.iloc[0]["score"] > 0.999
    assert frame.iloc[0]["label"] == "chirp"
    assert list(frame["rank"]) == [1, 2, 3, 4, 5]
    assert frame["score"].is_monotonic_decreasing and frame["percentile"].is_monotonic_decreasing
    assert frame.iloc[0]["percentile"] == 100.0 and frame["tags"].isna().all()  # aisfx names no classes


def test_reindexing_is_idempotent(settings, sounds):
    lib = Library(settings)
    lib.index([sounds])
    again = lib.index([sounds])
    assert again.added == [] and len(again.unchanged) == 12 and again.failed == []
    assert lib.count() == 12


def test_changed_file_replaces_its_old_entry(settings, sounds):
    lib = Library(settings)
    lib.index([sounds])
    target = sounds / "tone" / "tone_0.wav"
    old_ids = lib.store.ids_for_path(str(target))
    sf.write(target, synth("noise", 2.0, seed=7), 22050)
    report = lib.index([sounds])
    assert report.updated == [str(target)] and report.added == [] and len(report.unchanged) == 11
    assert lib.count() == 12
    new_ids = lib.store.ids_for_path(str(target))
    assert len(new_ids) == 1 and new_ids != old_ids
    assert lib.get(old_ids[0]) is None


def test_duplicate_content_is_stored_once(settings, tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(folder / name, synth("tone", 1.0), 22050)
    lib = Library(settings)
    report = lib.index([folder])
    assert len(report.added) == 1 and len(report.unchanged) == 1 and lib.count() == 1


def test_labels_from_manifest_else_folder_name(tmp_path):
    root = tmp_path / "lib"
    (root / "sub").mkdir(parents=True)
    for name in ("sub/a.wav", "sub/b.wav", "c.wav"):
        sf.write(root / name, synth("tone", 0.5), 22050)
    (root / "manifest.csv").write_text("file,label\nsub/a.wav,boom\n")
    items, missing = collect([root, tmp_path / "missing"])
    labels = {i.path.name: i.label for i in items}
    assert labels == {"a.wav": "boom", "b.wav": "sub", "c.wav": "lib"}
    assert missing and missing[0][1] == "no such file or folder"
    items, _ = collect([root], default_label="mine")
    assert {i.label for i in items} == {"mine"}


def test_stats_items_vectors_and_clear(settings, sounds):
    lib = Library(settings)
    lib.index([sounds])
    stats = lib.stats()
    assert stats["model"] == "aisfx" and stats["count"] == 12
    assert stats["labels"] == {"chirp": 3, "clicks": 3, "noise": 3, "tone": 3}
    meta, vecs = lib.vectors()
    assert vecs.shape == (12, 512) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert set(meta["label"]) == {"chirp", "clicks", "noise", "tone"}
    lib.clear()
    assert lib.count() == 0
    assert lib.search(sounds / "tone" / "tone_0.wav", 3).empty


def test_a_second_indexing_job_is_refused_while_one_runs(settings, sounds):
    lib = Library(settings)
    lib._index_lock.acquire()
    try:
        with pytest.raises(StoreError, match="Another indexing job"):
            lib.index([sounds])
    finally:
        lib._index_lock.release()
    assert len(lib.index([sounds]).added) == 12


def test_long_files_over_the_index_limit_are_reported(settings, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    sf.write(folder / "long.wav", synth("tone", 5.0), 22050)
    lib = Library(settings.with_(max_index_seconds=2))
    report = lib.index([folder])
    assert report.failed == [("long.wav", "is 5.0 s long; the limit is 2 s")]


def test_models_get_their_own_collections(settings, sounds):
    a = Library(settings)
    m = Library(settings, model="mfcc")
    a.index([sounds])
    assert a.collection != m.collection and m.count() == 0


def test_stored_vectors_are_the_models_own_embedding_of_each_piece(settings, sounds):
    """The decode workers run the model's front end (Embedder.prepare) while the model embeds the
    batch before: every stored segment must still be the model's own embedding of its piece."""
    from search_core.audio import load_audio

    sf.write(sounds / "tone" / "long.wav", synth("chirp", 7.0, 22050), 22050)  # several segments
    lib = Library(settings)
    lib.index([sounds])
    emb = lib.embedder
    files, segs = lib.store.segment_vectors()
    paths = {r["id"]: r["path"] for r in lib.store.iterate(("id", "path"))}
    assert len(set(files)) == 13 and len(segs) > 13
    for fid in set(files):
        clip = load_audio(paths[fid], emb.sample_rate)
        expected = emb.embed(emb.pieces(clip.samples, clip.duration)[1])
        stored = np.asarray([v for f, v in zip(files, segs) if f == fid])
        assert len(stored) == len(expected)
        assert (stored @ expected.T).max(axis=1).min() > 0.99999
