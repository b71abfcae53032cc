import numpy as np
import pytest
import soundfile as sf

from search_core.audio import AudioError, load_audio, pad_to_seconds, prepare
from search_core.embedders import get_embedder

from .conftest import synth


def dominant_hz(samples: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sr)[np.argmax(spec)])


def tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_decodes_each_format_to_mono_at_model_rate(tmp_path, fmt, subtype):
    path = tmp_path / f"a.{fmt}"
    stereo = np.stack([tone(440, 1.5, 44100), tone(440, 1.5, 44100)], axis=1)
    sf.write(path, stereo, 44100, subtype=subtype)
    clip = load_audio(path, 32000)
    assert clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert clip.sample_rate == 32000 and clip.source_rate == 44100 and clip.channels == 2
    assert abs(clip.duration - 1.5) < 0.1
    assert abs(len(clip.samples) / 32000 - clip.duration) < 0.1
    assert abs(dominant_hz(clip.samples, 32000) - 440) < 5


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 96000, 192000])
def test_resamples_exotic_rates(tmp_path, rate):
    path = tmp_path / "a.wav"
    sf.write(path, tone(1000, 1.0, rate), rate)
    clip = load_audio(path, 44100)
    assert abs(len(clip.samples) - 44100) < 50
    assert abs(dominant_hz(clip.samples, 44100) - 1000) < 5


def test_stereo_is_downmixed(tmp_path):
    left = tone(440, 1.0, 22050)
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([left, -left], axis=1), 22050, subtype="FLOAT")
    assert np.max(np.abs(load_audio(path, 22050).samples)) < 1e-4  # opposite channels cancel
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 22050, subtype="FLOAT")
    assert abs(np.max(np.abs(load_audio(path, 22050).samples)) - 0.25) < 0.01


def test_float_audio_beyond_full_scale_is_made_peak_safe(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, 3 * tone(440, 1.0, 22050), 22050, subtype="FLOAT")
    samples = load_audio(path, 22050).samples
    assert np.max(np.abs(samples)) <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty"),
        (b"this is a text file, not audio\n" * 20, "not a readable audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),  # truncated header
        (b"\x00" * 4096, "not a readable audio file"),
    ],
)
def test_bad_input_raises_audio_error_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        load_audio(path, 32000)
    assert reason in str(err.value)
    assert str(err.value).startswith("bad.wav:")
    assert str(tmp_path) not in str(err.value)  # never leak server paths


def test_header_only_wav_has_no_samples(tmp_path):
    path = tmp_path / "hdr.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(AudioError, match="no audio samples|not a readable"):
        load_audio(path, 22050)


def test_truncated_ogg_is_either_partial_audio_or_a_clear_error(tmp_path):
    path = tmp_path / "cut.ogg"
    sf.write(path, tone(440, 3.0, 22050), 22050, format="OGG", subtype="VORBIS")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        clip = load_audio(path, 22050)
    except AudioError as exc:
        assert "cut.ogg" in str(exc)
    else:
        assert 0 < clip.duration < 3.0 and np.all(np.isfinite(clip.samples))


def test_length_and_size_limits_say_the_limit(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 3.0, 22050), 22050)
    with pytest.raises(AudioError, match="the limit is 2 s"):
        load_audio(path, 22050, max_seconds=2)
    with pytest.raises(AudioError, match="limit is 0.0 MB"):
        load_audio(path, 22050, max_bytes=1000)
    assert load_audio(path, 22050, max_seconds=3.5).duration == pytest.approx(3.0, abs=0.01)


def test_microphone_arrays_int16_stereo():
    rate = 48000
    samples = (tone(440, 1.0, rate) * 32767).astype(np.int16)
    clip = prepare(np.stack([samples, samples], axis=1), rate, 32000, name="mic")
    assert clip.channels == 2 and clip.sample_rate == 32000
    assert abs(np.max(np.abs(clip.samples)) - 0.5) < 0.01
    with pytest.raises(AudioError, match="limit"):
        prepare(samples, rate, 32000, max_seconds=0.5)
    with pytest.raises(AudioError, match="no audio samples"):
        prepare(np.zeros(0, np.int16), rate, 32000)


def test_padding_reaches_minimum_length():
    padded = pad_to_seconds(np.ones(100, np.float32), 1000, 1.0)
    assert len(padded) == 1000 and padded.sum() == 100


@pytest.mark.parametrize("model", ["aisfx", "mfcc"])
def test_silence_gives_finite_unit_vectors(tmp_path, settings, model):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(22050, np.float32), 22050)
    emb = get_embedder(settings, model)
    vec = emb.embed_one(load_audio(path, emb.sample_rate).samples)
    assert np.all(np.isfinite(vec)) and abs(np.linalg.norm(vec) - 1) < 1e-5


def test_nan_samples_are_cleaned():
    samples = synth("tone", 1.0)
    samples[::10] = np.nan
    clip = prepare(samples, 22050, 22050)
    assert np.all(np.isfinite(clip.samples))
