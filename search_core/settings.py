"""One settings object, read from environment variables, passed to everything else.

Nothing in search_core reads the environment directly: front ends build a Settings (usually
``Settings.from_env()``) and hand it down, so tests can run several configurations side by side.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

PANNS_CHECKPOINT_NAME = "Cnn14_mAP=0.431.pth"
PANNS_CHECKPOINT_URL = "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"


def is_lite_uri(uri: str) -> bool:
    """A Milvus Lite file path, as opposed to a server/cluster address."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value not in (None, "") else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "soundalike"


@dataclass(frozen=True)
class Settings:
    """Every knob of Soundalike. Defaults run offline on Milvus Lite with the `auto` model."""

    data_dir: Path = Path("data")
    # None means "Milvus Lite file inside data_dir"; any other value is a server URI.
    milvus_uri: str | None = None
    milvus_token: str | None = None
    library: str = "library"
    model: str = "auto"
    max_query_seconds: float = 30.0
    max_index_seconds: float = 600.0
    max_upload_mb: float = 50.0
    max_scan_seconds: float = 7200.0  # longest recording `scan`/`find` accept (streamed: memory stays flat)
    # How scan/find verify a candidate: "warped-room" ("warped-bg", and each alignment also tried
    # as the sound through a small room, room_check.py), "warped-bg" (log-frequency, speed/pitch
    # tolerant, warped.py, each score against the template's chance level on a fixed background,
    # background.py), "warped" (the same without that) or "logmel" (the earlier band-centred
    # log-mel correlation, matching.py), kept to compare against.
    verifier: str = "warped-room"
    # scan/find's candidate stages besides the embeddings: spectral-peak landmarks (landmarks.py)
    landmarks: bool = True
    panns_checkpoint: Path | None = None
    panns_data_dir: Path = field(default_factory=lambda: Path.home() / "panns_data")
    panns_url: str = PANNS_CHECKPOINT_URL
    # Try to download the PANNs checkpoint when `auto` resolves a model. Off means
    # `auto` only picks PANNs when the checkpoint is already on disk.
    allow_download: bool = True
    download_timeout: float = 30.0
    load_retry: float = 300.0  # seconds before the app tries again to load a model that failed
    admin: bool = False
    admin_token: str | None = None
    # Public mode (a hosted demo): visitors may search and index the bundled set, but adding
    # their own files needs the operator token. On by default inside a Hugging Face Space.
    public: bool = False
    # Extra folders whose indexed files the app may play back (besides sample_data and uploads).
    media_dirs: tuple[Path, ...] = ()
    sample_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "sample_data")
    max_zip_members: int = 500
    torch_threads: int = 0  # 0: leave torch's default
    # The forward pass (embedders/onnx_forward.py): "auto" (the model's fastest path that runs here
    # and passes its check: aisfx bf16 where the CPU has native bfloat16, else onnx), "onnx" (ONNX
    # Runtime, the same embeddings), "bf16" (aisfx only: OpenVINO in bfloat16, cosine 0.999+),
    # "int8" (quantized ONNX Runtime, aisfx only, cosine 0.997+) or "torch" (eager, the reference;
    # also what a refused fast path falls back to).
    inference: str = "auto"
    model_cache_dir: Path = field(default_factory=lambda: _user_cache() / "models")  # exported ONNX graphs
    decode_workers: int = 1  # measured best on 2 cores with torch on 2 threads (benchmarks)
    # Files written for visitors (Gradio's upload cache, copies made for players, excerpts, REST
    # request files) live under temp_dir and are swept: removed after cache_max_age seconds, and the
    # oldest first whenever they add up to more than cache_max_mb. Library files are never touched.
    temp_dir: Path | None = None  # None: <system temp>/soundalike-<hash of data_dir>
    cache_max_age: float = 3600.0
    cache_max_mb: float = 1024.0
    sweep_interval: float = 60.0
    job_retention: float = 3600.0  # seconds a finished index/scan job's report stays readable
    # The CLI beside a running app: it finds the app by the card in data_dir (appfile.py), or is
    # told its URL; the secret comes from that card unless given here.
    app_url: str | None = None
    app_secret: str | None = None
    # Live monitoring in the app: stream monitors (operator only: they make the server fetch URLs),
    # the file of URLs started with the app, and the limits of visitors' microphone sessions.
    monitors_file: Path | None = None
    max_monitors: int = 4
    live_seconds: float = 300.0  # longest microphone session
    live_sessions: int = 4  # microphone sessions at once, all visitors
    live_per_visitor: int = 1  # ... and per visitor (by address)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        checkpoint = env.get("PANNS_CHECKPOINT")
        values = dict(
            data_dir=Path(env.get("SOUNDALIKE_DATA_DIR", "data")),
            milvus_uri=env.get("MILVUS_URI") or None,
            milvus_token=env.get("MILVUS_TOKEN") or None,
            library=env.get("SOUNDALIKE_LIBRARY", "library"),
            model=env.get("SOUNDALIKE_MODEL", "auto"),
            max_query_seconds=_env_float("SOUNDALIKE_MAX_QUERY_SECONDS", 30.0),
            max_index_seconds=_env_float("SOUNDALIKE_MAX_INDEX_SECONDS", 600.0),
            max_upload_mb=_env_float("SOUNDALIKE_MAX_UPLOAD_MB", 50.0),
            max_scan_seconds=_env_float("SOUNDALIKE_MAX_SCAN_SECONDS", 7200.0),
            verifier=env.get("SOUNDALIKE_VERIFIER", "warped-room"),
            landmarks=_env_bool("SOUNDALIKE_LANDMARKS", True),
            panns_checkpoint=Path(checkpoint).expanduser() if checkpoint else None,
            panns_data_dir=Path(env.get("PANNS_DATA_DIR", str(Path.home() / "panns_data"))).expanduser(),
            panns_url=env.get("PANNS_URL", PANNS_CHECKPOINT_URL),
            allow_download=_env_bool("SOUNDALIKE_ALLOW_DOWNLOAD", True),
            download_timeout=_env_float("SOUNDALIKE_DOWNLOAD_TIMEOUT", 30.0),
            load_retry=_env_float("SOUNDALIKE_LOAD_RETRY", 300.0),
            admin=_env_bool("SOUNDALIKE_ADMIN", False),
            admin_token=env.get("SOUNDALIKE_ADMIN_TOKEN") or None,
            public=_env_bool("SOUNDALIKE_PUBLIC", bool(env.get("SPACE_ID"))),
            media_dirs=tuple(Path(p).expanduser() for p in env.get("SOUNDALIKE_MEDIA_DIRS", "").split(os.pathsep) if p),
            torch_threads=int(_env_float("SOUNDALIKE_TORCH_THREADS", 0)),
            inference=env.get("SOUNDALIKE_INFERENCE", "auto"),
            model_cache_dir=Path(env["SOUNDALIKE_MODEL_CACHE"]).expanduser() if env.get("SOUNDALIKE_MODEL_CACHE")
            else _user_cache() / "models",
            decode_workers=int(_env_float("SOUNDALIKE_DECODE_WORKERS", 1)),
            temp_dir=Path(env["SOUNDALIKE_TEMP_DIR"]).expanduser() if env.get("SOUNDALIKE_TEMP_DIR") else None,
            cache_max_age=_env_float("SOUNDALIKE_CACHE_MAX_AGE", 3600.0),
            cache_max_mb=_env_float("SOUNDALIKE_CACHE_MAX_MB", 1024.0),
            sweep_interval=_env_float("SOUNDALIKE_SWEEP_INTERVAL", 60.0),
            job_retention=_env_float("SOUNDALIKE_JOB_RETENTION", 3600.0),
            app_url=env.get("SOUNDALIKE_APP") or None,
            app_secret=env.get("SOUNDALIKE_APP_SECRET") or None,
            monitors_file=Path(env["SOUNDALIKE_MONITORS"]).expanduser() if env.get("SOUNDALIKE_MONITORS") else None,
            max_monitors=int(_env_float("SOUNDALIKE_MAX_MONITORS", 4)),
            live_seconds=_env_float("SOUNDALIKE_LIVE_SECONDS", 300.0),
            live_sessions=int(_env_float("SOUNDALIKE_LIVE_SESSIONS", 4)),
            live_per_visitor=int(_env_float("SOUNDALIKE_LIVE_PER_VISITOR", 1)),
        )
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def uri(self) -> str:
        """The Milvus URI: a server's, or the embedded Lite file under data_dir."""
        return self.milvus_uri or str(self.data_dir / "soundalike.db")

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.uri)

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def work_dir(self) -> Path:
        """Where this app's visitor files go (swept; see temp_dir). One per data folder by default,
        so two apps on different libraries never sweep each other's files."""
        if self.temp_dir is not None:
            return Path(self.temp_dir)
        tag = hashlib.sha256(str(Path(self.data_dir).resolve()).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"soundalike-{tag}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def panns_checkpoint_path(self) -> Path:
        return self.panns_checkpoint or self.panns_data_dir / PANNS_CHECKPOINT_NAME
