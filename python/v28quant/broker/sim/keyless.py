"""The simulated exchange a fresh machine gets with no Alpaca keys and no arguments.

Quotes come from replay over the bundled sample history (``v28quant.data.samples``), on a
simulated clock that starts in the last session of that history, at the opening of the trading
window, so orders fill at once; a restart resumes the account and the clock saved beside the
journal. Everything about it is announced loudly: it is not the market of today.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, time

from v28quant.broker.sim.broker import SimBroker, _one_clock
from v28quant.broker.sim.persist import state_path_for
from v28quant.calendar import ET
from v28quant.clock import Clock, SimClock
from v28quant.quotes import QuoteSource

log = logging.getLogger("v28quant.broker")

# The engines' trading window opens at 09:45 New York; the simulated day starts there.
START = time(9, 45)


def keyless_exchange(
    journal_path: str | os.PathLike[str] | None,
    *,
    quotes: QuoteSource | None = None,
    clock: Clock | None = None,
) -> SimBroker:
    """Return a ``SimBroker`` for keyless paper trading, saying loudly what it runs on.

    Parameters
    ----------
    journal_path
        The journal; the simulated account is kept beside it (``state_path_for``) and restored
        from there on start. None keeps the account in memory only.
    quotes
        A quote source to trade against instead of replay over the bundled samples.
    clock
        The simulated clock. Default: the quote source's own clock, or for the bundled samples
        a ``SimClock`` at 09:45 New York on their last session (or where a saved account
        stopped, if later). A quote source without a clock of its own needs one.
    """
    state = None if journal_path is None else state_path_for(journal_path)
    saved = None if state is None else SimBroker.saved_clock(state)
    source = "a caller-supplied quote source"
    if quotes is None:
        from v28quant.data.replay import ReplayFeed
        from v28quant.data.samples import sample_history

        history = sample_history()
        last = max(history.bars["timestamp"]).tz_convert(ET).date()
        start = datetime.combine(last, START, ET)
        clock = clock or SimClock(max(start, saved) if saved else start)
        quotes = ReplayFeed(history, _sim_clock(clock))
        source = f"replay of the bundled sample history ({len(history.symbols)} symbols to {last})"
    clock = _one_clock(quotes, clock)
    broker = SimBroker(quotes, clock, state_path=state)
    log.warning(
        "BROKER: SIMULATED exchange (SimBroker), no Alpaca keys configured; quotes from %s; "
        "simulated clock at %s New York, not the real time; account %s",
        source,
        f"{clock.now().astimezone(ET):%Y-%m-%d %H:%M}",
        "kept in memory only" if state is None else f"saved in {state}",
        extra={"broker": "sim", "simulated": True, "state_path": str(state) if state else None},
    )
    return broker


def _sim_clock(clock: Clock) -> SimClock:
    if not isinstance(clock, SimClock):
        raise ValueError(
            f"replay of the sample history needs a simulated clock (SimClock), got "
            f"{type(clock).__name__}: its prices are from the past, not now"
        )
    return clock
