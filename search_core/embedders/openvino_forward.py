"""The bf16 forward pass: the exported ONNX graph (onnx_forward.py) compiled by OpenVINO with
bfloat16 arithmetic, on CPUs that compute bfloat16 natively (Intel AMX or AVX512-BF16).

Why: on this project's 2-core CPU (Xeon with AMX), aisfx's forward pass on a batch of 32 blocks
runs 6x faster than on ONNX Runtime in float32 (16x torch eager), with embeddings within cosine
0.9998 of torch's (`python -m benchmarks --only indexing` measures both). Where the CPU has no
native bfloat16 the same arithmetic would be emulated, slower than float32, so the mode is
refused there (`auto` then takes ONNX Runtime).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import FastPathUnavailable


class NoBf16(FastPathUnavailable):
    """bfloat16 cannot run natively here; the message says why."""


def _core():
    try:
        import openvino
    except ImportError as exc:
        raise NoBf16(f"openvino is not installed ({exc}); `pip install -r requirements.txt` installs it") from None
    return openvino.Core()


def require_bf16():
    """OpenVINO's runtime, where its CPU plugin computes bfloat16 natively; else NoBf16 says why."""
    core = _core()
    if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise NoBf16("this CPU has no native bfloat16 (Intel AMX or AVX512-BF16)")
    return core


def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bfloat16 natively on this machine."""
    try:
        require_bf16()
    except Exception:  # NoBf16, or a plugin that cannot load here
        return False
    return True


@dataclass
class OpenVinoForward:
    """A compiled OpenVINO model standing in for a torch module: numpy in, numpy outputs out. Each
    thread gets its own infer request (one request serves one call at a time)."""

    path: Path
    mode: str
    compiled: object
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        # the request's output tensors are overwritten by its next call: copy them out
        return [np.array(result[output], dtype=np.float32) for output in self.compiled.outputs]


def bf16_forward(graph: Path, threads: int) -> OpenVinoForward:
    """The float32 ONNX graph at `graph`, compiled for bfloat16 on the CPU."""
    core = require_bf16()
    config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return OpenVinoForward(Path(graph), "bf16", core.compile_model(str(graph), "CPU", config))
