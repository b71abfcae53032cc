"""The fast forward passes (SOUNDALIKE_INFERENCE) against torch eager, on the real aisfx weights
and real bundled sounds: ONNX Runtime gives the same embeddings, OpenVINO bf16 stays within cosine
0.999 (where the CPU has native bfloat16), `auto` takes the fastest that runs here, a cached graph,
a damaged cache made again, and a clear message for a mode that does not exist."""
from __future__ import annotations

import numpy as np
import pytest

from search_core.audio import load_audio
from search_core.embedders import ModelUnavailable
from search_core.embedders.aisfx import AisfxEmbedder
from search_core.embedders.openvino_forward import native_bf16
from search_core.settings import Settings

from .conftest import SAMPLE_DATA


@pytest.fixture(scope="module")
def clips():
    files = sorted(SAMPLE_DATA.rglob("*.ogg"))[1::9][:20]  # every category's kind of sound, none of int8's first calibration files
    return [load_audio(f, 44100).samples for f in files]


def settings(cache, mode: str) -> Settings:
    return Settings(model="aisfx", model_cache_dir=cache, inference=mode)


def test_onnx_embeddings_equal_torch_and_the_graph_is_cached(tmp_path, clips):
    cache = tmp_path / "models"
    reference = AisfxEmbedder(settings(cache, "torch"))
    assert reference.inference == "torch" and not cache.exists()  # the reference path writes nothing
    fast = AisfxEmbedder(settings(cache, "onnx"))
    assert fast.inference == "onnx" and fast.info()["inference"] == "onnx"
    (graph,) = cache.glob("aisfx-onnx-*.onnx")
    # ONNX Runtime's optimized form is kept beside it, its weights in a file of their own (mapped)
    (opt,) = cache.glob("aisfx-onnx-*.opt")
    assert opt.name.startswith(graph.name) and opt.with_name(opt.name + ".data").stat().st_size > 1_000_000
    cos = np.sum(reference.embed(clips) * fast.embed(clips), axis=1)
    assert cos.min() >= 0.9999, cos.min()
    made = graph.stat().st_mtime_ns, opt.stat().st_mtime_ns
    again = AisfxEmbedder(settings(cache, "onnx"))  # a second process: the cached graph, not a new export
    assert again.inference == "onnx" and (graph.stat().st_mtime_ns, opt.stat().st_mtime_ns) == made
    np.testing.assert_allclose(again.embed(clips[:3]), fast.embed(clips[:3]), atol=1e-6)


def test_int8_stays_close_to_torch(tmp_path, clips):
    reference = AisfxEmbedder(settings(tmp_path, "torch"))
    int8 = AisfxEmbedder(settings(tmp_path, "int8"))
    assert int8.inference == "int8"
    cos = np.sum(reference.embed(clips) * int8.embed(clips), axis=1)
    assert cos.min() >= 0.99 and np.median(cos) >= 0.998, (cos.min(), np.median(cos))


needs_bf16 = pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16 (Intel AMX or AVX512-BF16)")


@needs_bf16
def test_bf16_stays_within_0999_of_torch_on_the_float32_graph(tmp_path, clips):
    cache = tmp_path / "models"
    reference = AisfxEmbedder(settings(cache, "torch"))
    bf16 = AisfxEmbedder(settings(cache, "bf16"))
    assert bf16.inference == "bf16"
    (graph,) = cache.glob("*.onnx")  # OpenVINO compiles the float32 graph that `onnx` runs
    assert graph.name.startswith("aisfx-onnx-")
    cos = np.sum(reference.embed(clips) * bf16.embed(clips), axis=1)
    assert cos.min() >= 0.999 and np.median(cos) >= 0.9995, (cos.min(), np.median(cos))
    assert AisfxEmbedder(settings(cache, "onnx")).inference == "onnx" and list(cache.glob("*.onnx")) == [graph]


@needs_bf16
def test_bf16_gives_each_thread_its_own_request(tmp_path, clips):
    """The app embeds searches and indexing jobs on several threads at once: one OpenVINO request
    serves one call at a time, so each thread must get the same vectors as a lone caller."""
    from concurrent.futures import ThreadPoolExecutor

    emb = AisfxEmbedder(settings(tmp_path, "bf16"))
    alone = [emb.embed([c]) for c in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda c: emb.embed([c]), clips * 2))
    for i, vec in enumerate(together):
        np.testing.assert_allclose(vec, alone[i % len(clips)], atol=1e-6)


def test_auto_takes_bf16_where_the_cpu_has_it_else_onnx(tmp_path, clips):
    emb = AisfxEmbedder(settings(tmp_path, "auto"))
    assert emb.inference == ("bf16" if native_bf16() else "onnx")
    assert Settings().inference == "auto"  # the default


def test_a_damaged_cached_graph_is_made_again(tmp_path, clips, capfd):
    cache = tmp_path / "models"
    AisfxEmbedder(settings(cache, "onnx"))
    (graph,) = cache.glob("*.onnx")
    (opt,) = cache.glob("*.opt")
    graph.write_bytes(b"not a graph" * 100)
    emb = AisfxEmbedder(settings(cache, "onnx"))
    assert emb.inference == "onnx" and graph.stat().st_size > 1_000_000
    (remade,) = cache.glob("*.opt")  # the optimized form of the damaged graph went with it
    assert remade != opt and not opt.with_name(opt.name + ".data").exists()
    # a damaged optimized form: the graph runs as it is, and the next load optimizes it again
    remade.write_bytes(b"not a graph either")
    assert AisfxEmbedder(settings(cache, "onnx")).inference == "onnx" and not remade.exists()
    again = AisfxEmbedder(settings(cache, "onnx"))
    assert again.inference == "onnx" and remade.stat().st_size > 1000
    np.testing.assert_allclose(again.embed(clips[:2]), emb.embed(clips[:2]), atol=1e-6)
    assert "warning" not in capfd.readouterr().err


def test_an_unknown_mode_is_a_clear_message(tmp_path):
    with pytest.raises(ModelUnavailable, match="SOUNDALIKE_INFERENCE='fast' is not one of: auto, torch, onnx, bf16, int8"):
        AisfxEmbedder(settings(tmp_path, "fast"))


def test_an_unwritable_cache_falls_back_to_torch_and_says_so(tmp_path, clips, capfd):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    emb = AisfxEmbedder(settings(blocked / "models", "onnx"))
    assert emb.inference == "torch"
    assert "SOUNDALIKE_INFERENCE=onnx is unavailable, using torch" in capfd.readouterr().err
    assert emb.embed(clips[:2]).shape == (2, 512)
