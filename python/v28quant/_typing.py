"""Array type aliases shared by the package's annotations.

``FloatArray`` is what every vectorised face returns for array input; ``ArrayLike`` (numpy's)
is what they accept. Scalar-in / scalar-out is spelled with ``typing.overload`` at each face.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ArrayLike", "BoolArray", "FloatArray", "IntArray"]

FloatArray: TypeAlias = NDArray[np.float64]
"""An ndarray of float64 of any shape."""

IntArray: TypeAlias = NDArray[np.int64]
"""An ndarray of int64 of any shape (class labels, row positions)."""

BoolArray: TypeAlias = NDArray[np.bool_]
"""An ndarray of booleans of any shape (masks, call/put flags)."""
