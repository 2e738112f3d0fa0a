"""SimBroker: the built-in simulated exchange (paper mode without keys, and backtests).

Orders fill against a ``QuoteSource`` on a ``Clock``; nothing is random, so a run is
reproducible. The rules follow Alpaca's where an engine would notice: ``matching`` (fills,
sessions and cut-offs), ``buying_power`` (cash and margin accounts, options levels,
collateral) and ``expiry`` (exercise, assignment, expiry at the close). Time moves only with the
clock: every call first catches up on the session closes passed since the last call and then
matches open orders if the market is open; ``SimBroker.process()`` does just that. With a
``state_path`` the account survives a restart (``persist``).
"""

from v28quant.broker.sim.broker import SimBroker
from v28quant.broker.sim.persist import SimStateError, state_path_for
from v28quant.broker.sim.state import SimConfig

__all__ = ["SimBroker", "SimConfig", "SimStateError", "state_path_for"]
