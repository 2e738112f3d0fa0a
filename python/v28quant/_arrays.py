"""Broadcasting helpers shared by the typed faces of the compiled core.

The faces accept scalars or array-likes, broadcast them like numpy, hand flat float64 arrays to
``v28quant._core`` and give back a float for all-scalar input, an ndarray otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def broadcast_flat(
    names: tuple[str, ...], *values: ArrayLike
) -> tuple[list[NDArray[np.float64]], tuple[int, ...], bool]:
    """Broadcast ``values`` together and flatten them to contiguous float64 arrays.

    Returns the flat arrays, the broadcast shape and whether every input was a scalar.
    A ``ValueError`` names the arguments when shapes do not broadcast.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    scalar = all(a.ndim == 0 for a in arrays)
    try:
        shaped = np.broadcast_arrays(*arrays)
    except ValueError as exc:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"arguments do not broadcast together: {shapes}") from exc
    shape = shaped[0].shape if shaped else ()
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in shaped]
    return flat, shape, scalar


def shape_out(out: NDArray[np.float64], shape: tuple[int, ...], scalar: bool) -> Any:
    """Reshape a flat result to the broadcast shape; a Python float for scalar input."""
    if scalar:
        return float(out[0])
    return out.reshape(shape)
