"""v28quant: automated equity and options trading for Alpaca with a compiled quant core.

The numerics live in the compiled module ``v28quant._core`` (C++20, Eigen, pybind11); the typed
faces are ``v28quant.options.black_scholes``, ``v28quant.quant_models.*`` and
``v28quant.geometry``. Importing this package does not load the compiled module, so the
pure-Python layers (broker, data, journal) import without it.
"""

__version__ = "0.1.0"
