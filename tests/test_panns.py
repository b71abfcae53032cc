"""The PANNs Cnn14 path end to end: the real architecture with random weights saved the way the
released checkpoint is (numpy objects under 'sampler'), resolved, downloaded over loopback HTTP
and loaded in a temp HOME. Offline downloads must fail with a clear message and leave no file."""
from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from search_core.embedders import ModelUnavailable, get_embedder
from search_core.embedders.panns import (
    MIN_CHECKPOINT_BYTES,
    PannsCnn14,
    audioset_labels,
    build_cnn14,
    resolve_checkpoint,
)
from search_core.settings import Settings

from .conftest import synth


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch

    model = build_cnn14()
    path = tmp_path_factory.mktemp("ckpt") / "Cnn14_mAP=0.431.pth"
    sampler = {"indexes": np.arange(10), "rate": np.float64(0.5), "random_state": np.random.RandomState(0).get_state()[1]}
    torch.save({"model": model.state_dict(), "sampler": sampler, "iteration": 0}, path)
    assert path.stat().st_size >= MIN_CHECKPOINT_BYTES  # same size class as the real file
    return path


@pytest.fixture(scope="module")
def server(checkpoint):
    """Serves the checkpoint's folder on a loopback port, plus a short file."""
    (checkpoint.parent / "short.pth").write_bytes(b"x" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a, **k: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/Cnn14_mAP%3D0.431.pth"


def panns_settings(tmp_path, **kw) -> Settings:
    base = dict(data_dir=tmp_path / "data", panns_data_dir=tmp_path / "panns_data", download_timeout=10)
    base.update(kw)
    return Settings(**base)


def test_labels_ship_with_us_and_import_never_leaves_an_empty_csv(checkpoint):
    labels = audioset_labels()
    assert len(labels) == 527 and labels[0] == "Speech" and "Explosion" in labels
    import panns_inference.config as cfg

    assert cfg.classes_num == 527
    csv_in_home = Path.home() / "panns_data" / "class_labels_indices.csv"
    assert csv_in_home.stat().st_size > 10_000


def test_configured_checkpoint_loads_and_embeds(tmp_path, checkpoint):
    emb = PannsCnn14(panns_settings(tmp_path, panns_checkpoint=checkpoint), download=False)
    vecs = emb.embed([synth("tone", 0.2, 32000), synth("noise", 3.0, 32000)])  # 0.2 s: padded
    assert vecs.shape == (2, 2048) and np.all(np.isfinite(vecs))
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    tags = emb.tags(synth("noise", 2.0, 32000), top=5)
    assert len(tags) == 5 and all(name in emb.labels and 0.0 <= p <= 1.0 for name, p in tags)


def test_onnx_forward_equals_torch_on_the_real_architecture(tmp_path, checkpoint, capfd):
    """SOUNDALIKE_INFERENCE=onnx (auto's choice for PANNs) runs the exported Cnn14, front end
    included, with the same embeddings and AudioSet probabilities as torch, at every clip length it
    is given; bf16 is aisfx's alone, and asking for it says so."""
    clips = [synth("tone", 0.2, 32000), synth("noise", 3.0, 32000), synth("chirp", 45.0, 32000)]
    base = panns_settings(tmp_path, panns_checkpoint=checkpoint).with_(model_cache_dir=tmp_path / "models")
    fast = PannsCnn14(base.with_(inference="auto"), download=False)
    torch_ = PannsCnn14(base.with_(inference="torch"), download=False)
    assert (fast.inference, torch_.inference) == ("onnx", "torch") and len(list((tmp_path / "models").glob("*.onnx"))) == 1
    (v1, p1), (v2, p2) = fast.embed_tagged(clips), torch_.embed_tagged(clips)
    assert np.sum(v1 * v2, axis=1).min() >= 0.9999
    np.testing.assert_allclose(p1, p2, atol=1e-4)
    assert PannsCnn14(base.with_(inference="bf16"), download=False).inference == "onnx"
    assert "bf16 is offered for aisfx only; using onnx" in capfd.readouterr().err
    # once the graph has passed its check, the torch module (327 MB) is released; torch keeps its own
    assert fast.model is None and torch_.model is not None


def mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


def test_the_checkpoint_is_memory_mapped_and_an_old_format_one_still_loads(tmp_path, checkpoint):
    """Loading maps the checkpoint's tensors from the file (one copy of the weights in memory,
    not the file's beside the module's); a checkpoint in torch's pre-zip format cannot be mapped
    and is read whole, with the same weights."""
    import torch

    from search_core.embedders.panns import load_cnn14

    mapped = load_cnn14(checkpoint)
    assert str(checkpoint) in mapped_files()
    old = tmp_path / "old-format.pth"
    torch.save(torch.load(checkpoint, weights_only=False), old, _use_new_zipfile_serialization=False)
    read = load_cnn14(old)
    assert str(old) not in mapped_files()
    for (name, a), (_, b) in zip(mapped.state_dict().items(), read.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.from_numpy(synth("noise", 2.0, 32000)[None, :])
    with torch.inference_mode():
        np.testing.assert_allclose(mapped(x, None)["embedding"].numpy(), read(x, None)["embedding"].numpy(), atol=1e-6)


def test_long_clip_is_windowed(tmp_path, checkpoint):
    emb = PannsCnn14(panns_settings(tmp_path, panns_checkpoint=checkpoint), download=False)
    vec = emb.embed_one(synth("chirp", 45.0, 32000))
    assert vec.shape == (2048,) and np.all(np.isfinite(vec))


def test_download_over_http_into_the_cache_then_load(tmp_path, checkpoint, server):
    settings = panns_settings(tmp_path, panns_url=f"{server}/{checkpoint.name}")
    path = resolve_checkpoint(settings, progress=False)
    assert path == settings.panns_data_dir / "Cnn14_mAP=0.431.pth"
    assert path.stat().st_size == checkpoint.stat().st_size
    assert list(path.parent.glob("*.part")) == []
    # Once cached, it is used without the network.
    offline = settings.with_(panns_url=closed_port_url())
    assert resolve_checkpoint(offline, progress=False) == path
    emb = get_embedder(offline.with_(model="auto"))
    assert emb.name == "panns-cnn14" and "PANNs" in emb.note


def test_failed_download_is_a_clear_message_and_leaves_no_file(tmp_path):
    url = closed_port_url()
    settings = panns_settings(tmp_path, panns_url=url)
    with pytest.raises(ModelUnavailable) as err:
        resolve_checkpoint(settings, progress=False)
    msg = str(err.value)
    assert url in msg and str(settings.panns_checkpoint_path) in msg and "SOUNDALIKE_MODEL=aisfx" in msg
    assert not settings.panns_checkpoint_path.exists()
    assert list(settings.panns_data_dir.glob("*")) == []


def test_short_download_is_rejected_not_kept(tmp_path, server):
    settings = panns_settings(tmp_path, panns_url=f"{server}/short.pth")
    with pytest.raises(ModelUnavailable, match="only 1000 bytes"):
        resolve_checkpoint(settings, progress=False)
    assert list(settings.panns_data_dir.glob("*")) == []


def test_zero_byte_cache_file_is_not_trusted(tmp_path, checkpoint, server):
    settings = panns_settings(tmp_path, panns_url=f"{server}/{checkpoint.name}")
    settings.panns_data_dir.mkdir(parents=True)
    settings.panns_checkpoint_path.write_bytes(b"")  # what panns_inference's wget leaves offline
    path = resolve_checkpoint(settings, progress=False)
    assert path.stat().st_size == checkpoint.stat().st_size


def test_auto_falls_back_to_aisfx_and_says_why(tmp_path):
    settings = panns_settings(tmp_path, panns_url=closed_port_url(), model="auto")
    emb = get_embedder(settings)
    assert emb.name == "aisfx"
    assert "fell back to aisfx" in emb.note and "Could not download" in emb.note
    no_download = get_embedder(settings.with_(allow_download=False))
    assert no_download.name == "aisfx" and "downloads are off" in no_download.note


def test_missing_configured_checkpoint_is_a_clear_message(tmp_path):
    settings = panns_settings(tmp_path, panns_checkpoint=tmp_path / "nope.pth")
    with pytest.raises(ModelUnavailable, match="PANNS_CHECKPOINT points to"):
        get_embedder(settings, "panns-cnn14")


class NotAllowed:
    pass


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    import torch

    bad = tmp_path / "bad.pth"
    torch.save({"model": {}, "payload": NotAllowed()}, bad)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        PannsCnn14(panns_settings(tmp_path, panns_checkpoint=bad), download=False)


def test_tags_are_stored_at_index_time_and_returned_with_query_and_results(tmp_path, checkpoint):
    """Structure, not quality (random weights): PANNs names AudioSet classes for the query and each
    result, in search --json as "tags": [{"label", "p"}], top first; aisfx results have none."""
    import json
    import subprocess
    import sys

    import soundfile as sf

    from search_core.library import Library
    from search_core.store import Store

    folder = tmp_path / "sounds"
    folder.mkdir()
    for kind in ("noise", "chirp", "tone"):
        sf.write(folder / f"{kind}.wav", synth(kind, 1.5), 32000)
    sf.write(folder / "long.wav", synth("chirp", 9.0), 32000)  # 9 s: stored as segments, tagged as one file
    settings = panns_settings(tmp_path, model="panns-cnn14", panns_checkpoint=checkpoint)
    lib = Library(settings)
    assert lib.index([folder]).added and lib.store.has_tags
    labels = set(audioset_labels())
    result = lib.similar(folder / "chirp.wav", 4)
    for tags in [result.query_tags] + [r["tags"] for r in result.results()]:
        assert len(tags) == 5 and {t["label"] for t in tags} <= labels and all(0 <= t["p"] <= 1 for t in tags)
        assert [t["p"] for t in tags] == sorted((t["p"] for t in tags), reverse=True)
    # the UI: the query's tags under the status line, each result's top two in its title
    from search_core.ui import Handlers
    from search_core.service import Service

    from search_core.search import tags_text

    out = Handlers(Service(settings)).search_tab.search(str(folder / "tone.wav"), 3, None, None)
    status, titles = out[0], [p["label"] for p in out[2 + 20 : 2 + 20 + 3]]
    same = lib.similar(folder / "tone.wav", 3)  # AudioSet labels may hold commas ("Cutlery, silverware")
    assert status.endswith(f"\n\nThe model hears: {tags_text(same.query_tags, 3)}") and len(same.query_tags) == 5
    for title, hit in zip(titles, same.results()):
        assert title.removesuffix(" (not served)").endswith(f" · {tags_text(hit['tags'], 2)}"), (title, hit["tags"])
    Store.close_all()
    env = {"SOUNDALIKE_DATA_DIR": str(settings.data_dir), "SOUNDALIKE_MODEL": "panns-cnn14", "PANNS_CHECKPOINT": str(checkpoint),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "search_core", "search", str(folder / "noise.wav"), "--json", "--top-k", "3"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert len(found["query_tags"]) == 5 and {t["label"] for t in found["query_tags"]} <= labels
    assert all(set(t) == {"label", "p"} for r in found["results"] for t in r["tags"]) and len(found["results"]) == 3


def test_models_without_tags_leave_the_field_out(settings):
    import soundfile as sf

    from search_core.library import Library

    sf.write(settings.data_dir.parent / "a.wav", synth("chirp", 3.0), 44100)
    lib = Library(settings)
    lib.index([settings.data_dir.parent / "a.wav"])
    result = lib.similar(settings.data_dir.parent / "a.wav", 1)
    assert result.query_tags is None and "tags" not in result.results()[0] and result.results()[0]["percentile"] is None


def test_sound_events_carry_the_category_and_the_models_own_tags(tmp_path, checkpoint):
    """Structure, not quality (random weights): the "sounds like" layer names each event by the
    library's classifier and, with PANNs, adds its top three AudioSet tags from the same pass."""
    import soundfile as sf

    from search_core.library import Library
    from search_core.sounds_like import SoundsLike
    from search_core.store import Store

    for label, kinds in (("hum", ("tone", "tone")), ("hiss", ("noise", "noise")), ("sweep", ("chirp", "chirp"))):
        (tmp_path / "sounds" / label).mkdir(parents=True)
        for i, kind in enumerate(kinds):
            sf.write(tmp_path / "sounds" / label / f"{label}{i}.wav", synth(kind, 1.5 + i * 0.3, 32000, seed=i), 32000)
    lib = Library(panns_settings(tmp_path, model="panns-cnn14", panns_checkpoint=checkpoint))
    lib.index([tmp_path / "sounds"])
    clips = [synth(kind, 1.2, 32000, seed=5) for kind in ("tone", "noise", "chirp")]
    vectors, tags = lib.embedder.embed_tagged(clips)
    events = SoundsLike(lib, min_probability=0.0).label([(0.0, 1.2), (2.0, 3.2), (4.0, 5.2)], vectors, tags)
    assert [e.start for e in events] == [0.0, 2.0, 4.0]
    labels = set(audioset_labels())
    for e in events:
        assert e.label in {"hum", "hiss", "sweep"} and 0 <= e.probability <= 1
        d = e.as_dict()
        assert len(d["tags"]) == 3 and {t["label"] for t in d["tags"]} <= labels
    Store.close_all()
