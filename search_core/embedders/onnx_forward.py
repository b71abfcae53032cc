"""A model's forward pass on a faster runtime, the paths of `SOUNDALIKE_INFERENCE` (torch eager
stays the reference and the fallback): `onnx` (ONNX Runtime, float32), `bf16` (the same graph on
OpenVINO in bfloat16, openvino_forward.py), `int8` (ONNX Runtime, quantized), and `auto` (the
default: the first of the model's preferred paths that runs here and passes the check).

Measured on this project's 2-core CPU (aisfx, a batch of 32 blocks): torch eager 27 ms a block,
ONNX Runtime 12 ms with the same result (cosine 0.9999998), OpenVINO bf16 2 ms (cosine 0.9998),
ONNX Runtime int8 4 ms (cosine 0.997-0.9999 on held-out blocks; on an AVX2 CPU without VNNI,
with the 7-bit weights below, 0.995 at least over the bundled sounds). `python -m benchmarks --only
indexing` measures the whole path.

The graph is exported from the loaded torch module on first use and cached under
`model_cache_dir`, named by the weights' digest and the torch and onnxruntime versions, so a new
checkpoint or library version exports again. Every load checks the session against torch on a
fixed batch; a session that disagrees (cosine below CHECK_COSINE) is refused with a message and the
embedder takes the next path (torch at the end). int8 is calibrated on a fixed set of real blocks
(the bundled sounds).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .base import FastPathUnavailable

INFERENCE_MODES = ("auto", "torch", "onnx", "bf16", "int8")
# the least cosine between a session's output and torch's on the check batch: float32 must give
# the same vectors; bf16 must stay within the equality the project holds fast paths to (0.999);
# int8 is judged by its retrieval quality (README: eval P@5), its per-vector agreement is lower
CHECK_COSINE = {"onnx": 0.9999, "bf16": 0.999, "int8": 0.99}
FORMAT = 2  # raise when the export below changes, so cached graphs are made again


def check_signal(rate: int, seconds: float = 8.0) -> np.ndarray:
    """A fixed test signal (tones, a chirp, noise bursts) whose blocks check a fast path against torch."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    y = 0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t) + 0.1 * np.sin(2 * np.pi * 1500 * t)
    y += rng.normal(scale=0.2, size=len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)
    return y.astype(np.float32)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / np.maximum(den, 1e-12)))


@dataclass
class OnnxForward:
    """An ONNX Runtime session standing in for a torch module: numpy in, numpy outputs out."""

    path: Path
    mode: str
    session: object
    input_name: str

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})


def _options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, threads)  # 0: onnxruntime's default (the machine's cores)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def _session(path: Path, threads: int):
    import onnxruntime as ort

    # a GPU when this onnxruntime build has one (the onnxruntime-gpu wheel; README: Performance), else the CPU
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    if providers == ["CPUExecutionProvider"]:
        try:
            return _optimized_session(path, threads)
        except Exception:  # e.g. a full disk: the graph itself still runs (a damaged graph fails below)
            pass
    return ort.InferenceSession(str(path), _options(threads), providers=providers)


def cpu_tag() -> str:
    """What an optimized graph depends on besides its source: the CPU's instruction sets (ONNX
    Runtime's layout optimizations pick kernels, and block sizes, for them)."""
    import platform

    flags = ""
    with contextlib.suppress(OSError):
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith(("flags", "Features"))), "")
    return hashlib.sha256(f"{platform.machine()} {platform.processor()} {flags}".encode()).hexdigest()[:8]


def optimized_path(path: Path) -> Path:
    """Where ONNX Runtime's optimized form of the graph at `path` is kept (its weights beside it, in
    `<name>.data`), named by the source file's size and time and the CPU, so a graph exported again
    or a cache copied to another machine is optimized again."""
    stat = path.stat()
    tag = hashlib.sha256(f"{stat.st_size}-{stat.st_mtime_ns}-{cpu_tag()}".encode()).hexdigest()[:12]
    return path.with_name(f"{path.name}.{tag}.opt")


def _optimized_session(path: Path, threads: int):
    """A CPU session of the graph at `path`, loaded from its optimized form with its weights
    memory-mapped. Optimizing a graph on load holds several copies of its weights at once: PANNs'
    327 MB graph peaked at 1.17 GB to load and then held 415 MB; the optimized form, loaded with
    nothing left to optimize, peaks at 0.43 GB with the first forward pass, as fast (README:
    Memory). It is made once (under a lock: several indexers may start together) and kept."""
    import fcntl

    import onnxruntime as ort

    opt = optimized_path(path)
    if not opt.exists():
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not opt.exists():
                for stale in path.parent.glob(glob.escape(path.name) + ".*.opt*"):  # of an earlier export or CPU
                    stale.unlink(missing_ok=True)
                with tempfile.TemporaryDirectory(dir=path.parent, prefix=".optimize-") as tmp:
                    options = _options(threads)
                    options.optimized_model_filepath = str(Path(tmp) / opt.name)
                    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", opt.name + ".data")
                    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
                    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    os.replace(Path(tmp) / (opt.name + ".data"), opt.with_name(opt.name + ".data"))
                    os.replace(Path(tmp) / opt.name, opt)  # last: its presence means both are complete
    options = _options(threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # already done
    try:
        return ort.InferenceSession(str(opt), options, providers=["CPUExecutionProvider"])
    except Exception:  # damaged: made again on the next load
        opt.unlink(missing_ok=True)
        raise


def _export(module, example: np.ndarray, dynamic: dict, outputs: Sequence[str], dest: Path) -> None:
    import torch

    dims = {axis: torch.export.Dim(spec[0], min=spec[1], max=spec[2]) if isinstance(spec, tuple) else torch.export.Dim(spec)
            for axis, spec in dynamic.items()}
    # the exporter prints its progress, logs that torchvision's operators are skipped, and torch
    # 2.13's internals raise a FutureWarning: nothing a user can act on
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(module, (torch.from_numpy(example),), input_names=["input"], output_names=list(outputs),
                                        dynamic_shapes=(dims,), dynamo=True, verbose=False)
            program.save(str(dest))
    finally:
        registry.setLevel(level)


def _quantize(src: Path, dest: Path, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"input": calibration[i : i + 16]} for i in range(0, len(calibration), 16)])

        def get_next(self):
            return next(self._it, None)

    # reduce_range: 7-bit weights. x86 CPUs without VNNI multiply u8 activations by s8 weights with
    # vpmaddubsw, whose int16 pair sums saturate at full range: measured on the bundled sounds,
    # full-range weights gave cosine 0.956 to torch on one sound (top-5 overlap 0.889), 7-bit 0.995.
    pre = dest.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(dest), Batches(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        pre.unlink(missing_ok=True)


def _export_to(path: Path, module, check: np.ndarray, dynamic: dict, outputs: Sequence[str], mode: str, name: str,
               calibration: Callable[[], np.ndarray] | None) -> None:
    if mode == "int8" and calibration is None:
        raise FastPathUnavailable(f"int8 is not offered for {name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            graph = Path(tmp) / "model.onnx"
            _export(module, check[:2] if 0 in dynamic else check, dynamic, outputs, graph)
            if mode == "int8":
                quantized = Path(tmp) / "int8.onnx"
                _quantize(graph, quantized, calibration())
                graph = quantized
            os.replace(graph, path)  # atomic: concurrent processes (sharded indexers) each export, one wins
    except Exception as exc:
        raise FastPathUnavailable(f"exporting {name} to ONNX failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def _runner(path: Path, mode: str, threads: int):
    if mode == "bf16":
        from .openvino_forward import bf16_forward

        return bf16_forward(path, threads)
    session = _session(path, threads)
    return OnnxForward(path, mode, session, session.get_inputs()[0].name)


def onnx_forward(module, *, name: str, weights: Path, mode: str, check: np.ndarray, reference: Callable[[np.ndarray], np.ndarray],
                 cache_dir: Path, threads: int = 0, dynamic: dict | None = None, outputs: Sequence[str] = ("output",),
                 calibration: Callable[[], np.ndarray] | None = None):
    """The cached (or newly exported) session of `module`, checked against `reference` (torch) on
    `check`: its first output must agree within CHECK_COSINE[mode]. `dynamic` names the input's
    axes of varying size ({axis: name or (name, min, max)}; default: the batch, axis 0); the export
    is traced on `check` (cut to two rows when its batch axis varies)."""
    check = np.ascontiguousarray(check, dtype=np.float32)
    try:
        import onnxruntime
        import torch
    except ImportError as exc:
        raise FastPathUnavailable(f"onnxruntime is not installed ({exc}); `pip install -r requirements.txt` installs it") from None
    from ..indexer import file_sha256  # the indexer's content hash, here of the weights

    if mode == "bf16":  # refused before any export where the CPU cannot run it
        from .openvino_forward import require_bf16

        require_bf16()
    graph_mode = "onnx" if mode == "bf16" else mode  # bf16 compiles the float32 graph
    key = f"{name}-{graph_mode}-{file_sha256(Path(weights))[:16]}-torch{torch.__version__}-ort{onnxruntime.__version__}-f{FORMAT}"
    path = Path(cache_dir).expanduser() / f"{key.replace('+', '_')}.onnx"
    forward = None
    if path.exists():
        try:
            forward = _runner(path, mode, threads)
        except FastPathUnavailable:
            raise
        except Exception:  # a damaged cache file (e.g. a disk filled up mid-write elsewhere): made again
            path.unlink(missing_ok=True)
    if forward is None:
        _export_to(path, module, check, dynamic or {0: "batch"}, outputs, graph_mode, name, calibration)
        forward = _runner(path, mode, threads)
    agreement = min_cosine(forward(check)[0], reference(check))
    if agreement < CHECK_COSINE[mode]:
        raise FastPathUnavailable(f"the {mode} graph of {name} disagrees with torch (cosine {agreement:.5f} < {CHECK_COSINE[mode]})")
    return forward


def auto_paths(prefer: Sequence[str]) -> list[str]:
    """The paths `auto` tries, in the model's order of preference: bf16 only where the CPU computes
    it natively and no GPU serves ONNX Runtime (a GPU build of it is there to be used)."""
    from .openvino_forward import native_bf16

    paths = list(prefer)
    if "bf16" in paths and (_gpu_onnx() or not native_bf16()):
        paths.remove("bf16")
    return paths


def _gpu_onnx() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def forward_or_torch(make: Callable[[str], object], mode: str, name: str, prefer: Sequence[str] = ("onnx",)):
    """`make(path)` for a fast path (`auto`: each of `prefer` that may run here, in turn), or None
    (torch) for `torch` or when no fast path works (said on stderr: the model still works, only
    slower). The returned forward's `mode` says which path runs."""
    if mode not in INFERENCE_MODES:
        from .base import ModelUnavailable

        raise ModelUnavailable(f"SOUNDALIKE_INFERENCE={mode!r} is not one of: {', '.join(INFERENCE_MODES)}")
    if mode == "torch":
        return None
    reasons = []
    for path in auto_paths(prefer) if mode == "auto" else [mode]:
        try:
            forward = make(path)
        except Exception as exc:  # FastPathUnavailable, or a runtime failing to run the graph here
            reason = str(exc) if isinstance(exc, FastPathUnavailable) else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            reasons.append(f"{path}: {reason}" if mode == "auto" else reason)
            continue
        if reasons:
            print(f"warning: {name}: {'; '.join(reasons)}; using {path}", file=sys.stderr, flush=True)
        return forward
    print(f"warning: {name}: SOUNDALIKE_INFERENCE={mode} is unavailable, using torch: {'; '.join(reasons)}", file=sys.stderr, flush=True)
    return None
