"""Market data behind the ``DataFeed`` protocol.

``v28quant.data.base`` (the protocol, frame columns, OCC symbols), ``v28quant.data.replay``
(history on a simulated clock), ``v28quant.data.samples`` (built-in sample history and users'
files) and ``v28quant.data.alpaca`` (Alpaca; imported only when asked for, since it loads
alpaca-py).
"""

from v28quant.data.base import (
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    CONTRACT_COLUMNS,
    DataFeed,
    OccSymbol,
    format_occ,
    parse_occ,
)

__all__ = [
    "BAR_COLUMNS",
    "CHAIN_COLUMNS",
    "CONTRACT_COLUMNS",
    "DataFeed",
    "OccSymbol",
    "format_occ",
    "parse_occ",
]
