"""Shared fixtures. Tests use real parts: real decoding, real models, a real Milvus Lite file."""
from __future__ import annotations

import os
import tempfile

# Isolate HOME before anything imports panns_inference (it reads ~/panns_data at import time),
# so tests never touch, or depend on, the user's model cache.
os.environ["HOME"] = tempfile.mkdtemp(prefix="soundalike-test-home-")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("MPLBACKEND", "Agg")
for var in ("MILVUS_URI", "MILVUS_TOKEN", "SOUNDALIKE_MODEL", "PANNS_CHECKPOINT", "SOUNDALIKE_ADMIN", "SOUNDALIKE_ADMIN_TOKEN"):
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
def milvus_server(tmp_path_factory) -> str:
    """A real Milvus server (standalone 2.3.5, from the PyPI `milvus` package, installed by
    `scripts/install.sh --dev`) shared by the session; yields its URI."""
    uri, proc = start_milvus_server(tmp_path_factory.mktemp("milvus_server"))
    try:
        yield uri
    finally:
        Store.close_all()
        end_process_group(proc)


ETCD_PEER_PORT = 2380  # the embedded etcd of milvus 2.3.5 always listens here (not configurable)


def start_milvus_server(data: Path, port: int | None = None):
    """Starts `milvus-server` on `data` (a port of its own unless given) and waits until it answers;
    returns (uri, process). The wrapper does not stop the server binary on SIGTERM, so it runs in
    its own process group: end it with end_process_group. One such server runs per machine: its
    embedded etcd takes 127.0.0.1:2380 and its pid file /run/milvus/standalone.pid."""
    import socket
    import subprocess
    import sys
    import time

    exe = Path(sys.executable).parent / "milvus-server"
    if not exe.exists():
        pytest.fail("milvus-server is missing: install the test tools with `bash scripts/install.sh --dev`")

    def port_free(p: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return True
            except OSError:
                return False

    deadline = time.time() + 60  # a server that is still stopping holds the etcd port for a moment
    while not port_free(ETCD_PEER_PORT) and time.time() < deadline:
        time.sleep(1)
    if not port_free(ETCD_PEER_PORT):
        pytest.fail(f"127.0.0.1:{ETCD_PEER_PORT} is held by another process (another Milvus server?): "
                    "the embedded etcd of the test server needs it")
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}-server.log"
    for attempt in range(3):
        if port is None or attempt:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        base = data / f"run-{attempt}"
        log = data.parent / f"{data.name}-server-{attempt}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([str(exe), "--data", str(base), "--proxy-port", str(port)],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        uri = f"http://127.0.0.1:{port}"
        started, binary_seen = time.time(), False
        while time.time() < started + 180 and proc.poll() is None:
            binary_up = _group_alive(proc.pid, but=proc.pid)
            if binary_seen and not binary_up:
                break  # the server binary died (its wrapper lingers on): start again
            binary_seen = binary_seen or binary_up
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                from pymilvus import MilvusClient

                c = MilvusClient(uri, timeout=5)
                c.list_collections()
                c.close()
                return uri, proc
            except Exception:
                time.sleep(1)
        end_process_group(proc)
        time.sleep(2)
    pytest.fail(f"the Milvus server did not start (3 tries):\n{log.read_text()[-3000:]}")


def end_process_group(proc, *, grace: float = 60.0) -> None:
    """SIGTERM to the whole group, time to stop cleanly (a Milvus server killed outright leaves a
    session behind that a restarted server on the same data waits for), then SIGKILL."""
    import signal
    import time

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.time() + wait
        while time.time() < deadline and _group_alive(proc.pid):
            proc.poll()  # reap the leader when it exits
            time.sleep(0.2)
        if not _group_alive(proc.pid):
            break
    proc.poll()


def _group_alive(pgid: int, but: int | None = None) -> bool:
    """Whether any process of the group (other than `but`) is still running; zombies do not count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z" and int(stat.parent.name) != but:
            return True
    return False
