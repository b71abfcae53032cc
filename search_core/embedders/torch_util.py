"""Small torch helpers shared by the model wrappers."""
from __future__ import annotations


def numpy_safe_globals() -> list:
    """numpy classes that released checkpoints pickle, for torch.load(weights_only=True).

    Tuple form maps the numpy-1 name (`numpy.core`) onto numpy 2's `numpy._core`, so old
    checkpoints load without switching torch's safety off.
    """
    import numpy as np

    core = np._core.multiarray
    allowed: list = [
        (core.scalar, "numpy.core.multiarray.scalar"),
        (core._reconstruct, "numpy.core.multiarray._reconstruct"),
        core.scalar,
        core._reconstruct,
        np.ndarray,
        np.dtype,
    ]
    allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return allowed


def set_threads(settings) -> None:
    n = getattr(settings, "torch_threads", 0) if settings is not None else 0
    if n and n > 0:
        import torch

        torch.set_num_threads(n)
