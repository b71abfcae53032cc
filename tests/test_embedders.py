import numpy as np
import pytest

from search_core.embedders import clear_cache, get_embedder

from .conftest import synth


@pytest.fixture(scope="module")
def aisfx():
    from search_core.settings import Settings

    return get_embedder(Settings(model="aisfx"))


def cos(a, b):
    return float(np.dot(a, b))


def test_aisfx_is_deterministic_normalised_512d(aisfx):
    clips = [synth("tone", 3.0, 44100), synth("noise", 3.0, 44100)]
    a = aisfx.embed(clips)
    b = aisfx.embed(clips)
    assert a.shape == (2, 512) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    # batching must not change a clip's vector
    np.testing.assert_allclose(aisfx.embed([clips[1]])[0], a[1], atol=1e-5)


def test_aisfx_spectrogram_is_frames_by_mels(aisfx):
    spec = aisfx.spectrogram(synth("tone", 3.0, 44100))
    assert spec.shape[1] == 96 and spec.shape[0] > 100  # (frames, mels): ~130 frames for 3 s
    blocks = aisfx.blocks(synth("tone", 3.0, 44100))
    assert blocks.shape[1:] == (100, 96)


@pytest.mark.parametrize("seconds", [0.01, 0.05, 1.0, 7.3, 30.0])  # 30 s: more frames than one FFT call takes
def test_aisfx_power_spectrogram_is_librosas(seconds):
    """The front end's one-call STFT gives librosa's values (aisfx was trained on librosa's)."""
    import librosa

    from search_core.embedders.aisfx import power_spectrogram

    y = synth("noise", seconds, 44100) + synth("chirp", seconds, 44100)
    ours = power_spectrogram(y, 2048, 1024)
    theirs = np.abs(librosa.stft(y, n_fft=2048, hop_length=1024, win_length=2048)) ** 2
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * theirs.max())


@pytest.mark.parametrize("seconds", [0.2, 0.5, 60.0])
def test_aisfx_handles_short_and_long_clips(aisfx, seconds):
    vec = aisfx.embed_one(synth("chirp", seconds, 44100))
    assert vec.shape == (512,) and np.all(np.isfinite(vec))
    assert abs(np.linalg.norm(vec) - 1) < 1e-5


def test_aisfx_long_clip_is_embedded_in_bounded_chunks(aisfx):
    from search_core.embedders import aisfx as mod

    blocks = aisfx.blocks(synth("noise", 60.0, 44100))
    assert len(blocks) > mod.CHUNK_BLOCKS  # so the forward pass really is chunked


def test_aisfx_similar_sounds_are_closer(aisfx):
    t1, t2 = synth("tone", 2.0, 44100, seed=0), synth("tone", 2.0, 44100, seed=1)
    n1 = synth("noise", 2.0, 44100, seed=0)
    e = aisfx.embed([t1, t2, n1])
    assert cos(e[0], e[1]) > cos(e[0], e[2])


def test_mfcc_baseline(settings):
    emb = get_embedder(settings, "mfcc")
    e = emb.embed([synth("tone", 1.0), synth("noise", 0.05)])
    assert e.shape == (2, emb.dim) and np.all(np.isfinite(e))


def test_registry_reuses_loaded_models_and_rejects_unknown(settings):
    assert get_embedder(settings, "aisfx") is get_embedder(settings, "aisfx")
    with pytest.raises(ValueError, match="unknown model"):
        get_embedder(settings, "nope")


def test_clear_cache_gives_a_fresh_instance(settings):
    first = get_embedder(settings, "mfcc")
    clear_cache()
    assert get_embedder(settings, "mfcc") is not first
