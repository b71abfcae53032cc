"""Shared fixtures. Tests use real parts: real decoding, real models, a real Milvus Lite file."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Isolate HOME before anything imports panns_inference (it reads ~/panns_data at import time),
# so tests never touch, or depend on, the user's model cache. It is removed when the session ends:
# it holds the session's model cache (over 600 MB), and 160 runs left behind had filled the disk.
TEST_HOME = tempfile.mkdtemp(prefix="soundalike-test-home-")
os.environ["HOME"] = TEST_HOME
atexit.register(shutil.rmtree, TEST_HOME, ignore_errors=True)
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("MPLBACKEND", "Agg")
for var in ("MILVUS_URI", "MILVUS_TOKEN", "SOUNDALIKE_MODEL", "PANNS_CHECKPOINT", "SOUNDALIKE_ADMIN", "SOUNDALIKE_ADMIN_TOKEN",
            "XDG_CACHE_HOME", "SOUNDALIKE_MODEL_CACHE", "SOUNDALIKE_INFERENCE"):
    os.environ.pop(var, None)

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from search_core.settings import Settings  # noqa: E402
from search_core.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"


def synth(kind: str, seconds: float = 2.0, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Small family of distinguishable test sounds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    if kind == "tone":
        f = 300 + 40 * seed
        y = 0.5 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 2 * f * t)
    elif kind == "noise":
        y = 0.3 * rng.normal(size=t.size) * np.exp(-t * (1 + seed))
    elif kind == "chirp":
        f0, f1 = 200 + 50 * seed, 4000
        y = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    elif kind == "clicks":
        y = np.zeros_like(t)
        period = int(sr / (8 + seed))
        y[::period] = 0.9
        y = np.convolve(y, np.exp(-np.arange(200) / 20), mode="same")
    else:
        raise ValueError(kind)
    return y.astype(np.float32)


def write_sounds(folder: Path, kinds=("tone", "noise", "chirp", "clicks"), per_kind: int = 3, sr: int = 22050) -> list[Path]:
    paths = []
    for kind in kinds:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_kind):
            p = folder / kind / f"{kind}_{i}.wav"
            sf.write(p, synth(kind, 2.0, sr, seed=i), sr)
            paths.append(p)
    return paths


def write_many(folder: Path, n: int = 200) -> None:
    """n one-second files (16 kHz) of the four kinds at varied levels, named s000.wav, s001.wav, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ("tone", "noise", "chirp", "clicks")
    for i in range(n):
        sf.write(folder / f"s{i:03d}.wav", synth(kinds[i % 4], 1.0, 16000, seed=i) * np.float32(0.5 + (i % 7) / 14), 16000)


def wait_for_progress(proc, err: Path, total: int, at_least: int, limit: float = 300.0) -> None:
    """Until the CLI's progress bar on stderr (`<done>/<total>`) reaches at_least; the process must
    still be running then (the caller is about to interrupt it)."""
    import re
    import time

    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        done = [int(n) for n in re.findall(rf"(\d+)/{total}", err.read_text(errors="replace"))]
        if done and max(done) >= at_least:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "indexing finished before it could be interrupted"


def create_schema1_collection(uri: str, collection: str, model: str, dim: int) -> None:
    """A collection as Soundalike's first schema made it (one vector per file, no schema property)."""
    from pymilvus import DataType, MilvusClient

    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    c = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=80)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    index = c.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
    c.create_collection(collection, schema=schema, index_params=index, properties={"soundalike.model": model, "soundalike.dim": str(dim)})
    c.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Offline settings on a fresh Milvus Lite file, with the bundled aisfx model."""
    return Settings(
        data_dir=tmp_path / "data",
        model="aisfx",
        allow_download=False,
        panns_data_dir=tmp_path / "panns_data",
    )


@pytest.fixture
def sounds(tmp_path) -> Path:
    folder = tmp_path / "sounds"
    write_sounds(folder)
    return folder


@pytest.fixture(autouse=True)
def _close_milvus_clients():
    yield
    Store.close_all()


@pytest.fixture(scope="session")
def sample_settings(tmp_path_factory) -> Settings:
    """A library holding the whole bundled sample set, indexed once per test session."""
    from search_core.library import Library

    s = Settings(data_dir=tmp_path_factory.mktemp("sample_lib"), model="aisfx", allow_download=False)
    report = Library(s).index([SAMPLE_DATA])
    s.__dict__["_report"] = report  # frozen dataclass: keep the report beside it for the tests
    return s


@pytest.fixture(scope="session")
def milvus(tmp_path_factory):
    """A real Milvus server (standalone 2.3.5, from the PyPI `milvus` package, installed by
    `scripts/install.sh --dev`) shared by the session: a benchmarks.milvus_server.MilvusServer,
    which the fault tests kill and restart (on the same data and port)."""
    server = start_milvus_server(tmp_path_factory.mktemp("milvus_server"))
    try:
        yield server
    finally:
        Store.close_all()
        server.stop()


@pytest.fixture(scope="session")
def milvus_server(milvus) -> str:
    """The shared server's URI."""
    return milvus.uri


def start_milvus_server(data: Path, port: int | None = None, **kwargs):
    """benchmarks.milvus_server.start_milvus_server, failing the test (not erroring) when it cannot."""
    from benchmarks.milvus_server import ServerError, start_milvus_server as start

    try:
        return start(data, port, **kwargs)
    except ServerError as exc:
        pytest.fail(str(exc))
