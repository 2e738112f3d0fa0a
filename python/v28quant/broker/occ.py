"""OCC option symbols, re-exported from :mod:`v28quant.occ` for imports through the broker."""

from v28quant.occ import OccSymbol, format_occ, is_occ, parse_occ

__all__ = ["OccSymbol", "format_occ", "is_occ", "parse_occ"]
