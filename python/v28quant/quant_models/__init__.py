"""Quant models: typed numpy faces of the compiled core (and CAPM in numpy)."""
