"""Broadcasting helpers shared by the typed faces of the compiled core.

The faces accept scalars or array-likes, broadcast them like numpy, hand flat float64 arrays to
``v28quant._core`` and give back a float for all-scalar input, an ndarray otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from v28quant._typing import FloatArray


def _as_flag(value: ArrayLike) -> NDArray[np.bool_]:
    """Return ``value`` as a boolean array.

    Bool input as it is, anything else as ``value != 0`` (NaN is True, as in ``astype(bool)``).
    """
    a = np.asarray(value)
    if a.dtype == np.bool_:
        return a
    return np.asarray(np.asarray(value, dtype=np.float64) != 0.0)


def broadcast_flat(
    names: tuple[str, ...], *values: ArrayLike, flags: int = 0
) -> tuple[list[NDArray[Any]], tuple[int, ...], bool]:
    """Broadcast ``values`` together and flatten them to contiguous arrays.

    The last ``flags`` values are boolean flags (call/put, American/European) and come back as
    contiguous uint8 0/1 arrays, the layout the core takes, without a float64 round trip; the
    others come back as contiguous float64. Returns the flat arrays, the broadcast shape and
    whether every input was a scalar. A ``ValueError`` names the arguments when shapes do not
    broadcast.
    """
    n_num = len(values) - flags
    arrays: list[NDArray[Any]] = [np.asarray(v, dtype=np.float64) for v in values[:n_num]]
    arrays += [_as_flag(v) for v in values[n_num:]]
    scalar = all(a.ndim == 0 for a in arrays)
    try:
        shaped = np.broadcast_arrays(*arrays)
    except ValueError as exc:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"arguments do not broadcast together: {shapes}") from exc
    shape = shaped[0].shape if shaped else ()
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in shaped[:n_num]]
    flat += [np.ascontiguousarray(a).ravel().view(np.uint8) for a in shaped[n_num:]]
    return flat, shape, scalar


def shape_out(out: NDArray[np.float64], shape: tuple[int, ...], scalar: bool) -> float | FloatArray:
    """Reshape a flat result to the broadcast shape; a Python float for scalar input."""
    if scalar:
        return float(out[0])
    return out.reshape(shape)
