"""An end-to-end tour on the built-in simulated exchange: ``python -m v28quant.demo``.

Runs offline on the sample history bundled with the installed packages (skfolio's S&P 500
stocks and arch's S&P 500 index): CAPM screen, GARCH volatility, a synthetic option chain priced
from the replay feed, an SVI surface and Dupire local vol fitted to it, Heston calibrated to it,
Black-Scholes / CRR / Monte Carlo prices, and a cash-secured put sold on the simulated exchange
with the order journaled before it is sent. With Alpaca keys set nothing here talks to Alpaca:
the production runner is the entry point for that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from v28quant.broker import OrderRequest, Owner
from v28quant.broker.sim import SimBroker, SimConfig
from v28quant.calendar import ET, default_calendar
from v28quant.clock import SimClock
from v28quant.data.replay import ReplayFeed
from v28quant.data.samples import INDEXES, sample_history, sp500_index_ohlcv
from v28quant.journal import Journal
from v28quant.journal.store import JournalError
from v28quant.options import black_scholes
from v28quant.options.surface import SviSurface
from v28quant.quant_models import (
    capm,
    crr_binomial,
    dupire_local_vol,
    garch,
    heston_model,
    monte_carlo_pricer,
)
from v28quant.venue import MIN_HISTORY_SESSIONS

RATE = 0.04  # flat continuously compounded rate assumed by the demo


def _closes(bars: pd.DataFrame) -> pd.DataFrame:
    wide = bars.pivot_table(index="timestamp", columns="symbol", values="close")
    return wide.sort_index()


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)))


class DemoArgumentError(ValueError):
    """An argument the bundled history cannot serve; the message names it."""


def _check_arguments(closes: pd.DataFrame, underlying: str, session: str) -> None:
    """Refuse an underlying or session the tour cannot replay, before anything is journaled.

    Raises
    ------
    DemoArgumentError
        Not a stock of the sample, not a date, not a trading session, or outside the span of
        the underlying's history after the years its fits need.
    """
    stocks = [s for s in closes.columns if s not in INDEXES]
    if underlying not in stocks:
        raise DemoArgumentError(
            f"--underlying {underlying}: not a stock of the bundled sample ({', '.join(stocks)})"
        )
    try:
        day = date.fromisoformat(session)
    except ValueError:
        raise DemoArgumentError(f"--session: not a date (YYYY-MM-DD): {session!r}") from None
    days = closes[underlying].dropna().index.tz_convert(ET).date
    lo, hi = days[MIN_HISTORY_SESSIONS], days[-1]
    if not lo <= day <= hi:
        raise DemoArgumentError(
            f"--session {day}: outside the bundled history of {underlying} ({lo}..{hi})"
        )
    if not default_calendar().is_session(day):
        raise DemoArgumentError(
            f"--session {day}: not a trading session (weekend or exchange holiday)"
        )


def _check_journal(path: Path) -> None:
    """Refuse a journal the tour could not keep (a missing folder, another program's file).

    Said before the tour, not as a traceback at its last step; opening it creates the file,
    which the tour's order then goes into.

    Raises
    ------
    DemoArgumentError
        The journal's own one-line reason, under ``--journal``.
    """
    try:
        Journal(path).close()
    except JournalError as exc:
        raise DemoArgumentError(f"--journal: {exc}") from None


async def run(journal_path: Path, underlying: str, session: str) -> None:
    """Walk through the system on ``underlying`` at ``session``, journaling to ``journal_path``.

    Raises
    ------
    DemoArgumentError
        ``underlying`` or ``session`` is not one the bundled history can replay, or
        ``journal_path`` cannot be a journal.
    """
    history = sample_history().merge(sp500_index_ohlcv())
    closes = _closes(history.bars)
    _check_arguments(closes, underlying, session)
    _check_journal(journal_path)
    cutoff = pd.Timestamp(session, tz="UTC")
    past = closes[closes.index < cutoff]
    returns = past.pct_change().dropna(how="all")
    print(
        f"sample history: {len(history.symbols)} symbols, {past.index[0].date()} .. "
        f"{past.index[-1].date()} (sources: {sorted(set(history.source.values()))})"
    )

    _section("CAPM screen against the S&P 500 index, last 3 years")
    recent = returns.iloc[-756:]
    stocks = recent.drop(columns=[c for c in ("SPX", "VIX") if c in recent])
    screen = capm.screen(stocks, market="SP500", rf=RATE / 252)
    print(screen.head(5).round(4).to_string())

    _section(f"GARCH(1,1) on {underlying} daily returns")
    r = np.log(past[underlying]).diff().dropna().iloc[-2500:]
    fit = garch.fit(100 * r)
    print(
        f"mu {fit.mu:.4f} %  omega {fit.omega:.4f}  alpha {fit.alpha:.4f}  beta {fit.beta:.4f}"
        f"  loglik {fit.loglik:.2f}  converged {fit.converged}"
    )
    horizons = np.array([5, 21, 63, 126, 252])
    term = fit.vol_term_structure(horizons) / 100
    print(
        "annualised vol by horizon (days): "
        + ", ".join(f"{h}: {v:.1%}" for h, v in zip(horizons, term, strict=True))
    )

    _section(f"Replay feed and simulated exchange at {session} 10:30 ET")
    clock = SimClock(datetime.combine(pd.Timestamp(session).date(), time(10, 30), ET))
    feed = ReplayFeed(history, clock)
    quote = await feed.quote(underlying)
    spot = float(quote.mid)
    print(f"{underlying} quote {quote.bid} / {quote.ask} (synthetic intraday: {quote.synthetic})")
    chain = await feed.option_chain(underlying)
    print(
        f"option chain: {len(chain)} contracts, {chain['expiry'].nunique()} expiries, "
        f"synthetic: {bool(chain['synthetic'].all())}"
    )

    _section("SVI surface and Dupire local vol from the chain")
    today = clock.now().astimezone(ET).date()
    quotes = chain.assign(t=(pd.to_datetime(chain["expiry"]) - pd.Timestamp(today)).dt.days / 365)
    surface = SviSurface.fit(quotes[["strike", "type", "bid", "ask", "t"]], spot=spot, rate=RATE)
    info = surface.fit_info
    assert info is not None  # set by SviSurface.fit
    print(info[["t", "forward", "n_quotes", "rmse_vol_pts"]].round(4).to_string())
    print(f"arbitrage-free: {surface.arbitrage_report().free}")
    t_grid = np.array([0.1, 0.25, 0.5])
    k_grid = spot * np.array([0.9, 1.0, 1.1])
    lv = dupire_local_vol.local_vol(surface, t_grid[:, None], k_grid[None, :])
    print("local vol (rows t = 0.1, 0.25, 0.5; strikes 90/100/110 % of spot):")
    print(np.array2string(lv, precision=4))

    _section("Heston calibrated to the chain's out-of-the-money mids")
    otm = quotes[
        (quotes["t"] > 0.05)
        & (quotes["bid"] > 0)
        & ((quotes["type"] == "call") == (quotes["strike"] >= spot))
    ]
    cal = heston_model.calibrate(
        spot,
        otm["strike"].to_numpy(),
        otm["t"].to_numpy(),
        RATE,
        0.0,
        otm["mid"].to_numpy(),
        call=(otm["type"] == "call").to_numpy(),
    )
    print(
        f"v0 {cal.params.v0:.4f} kappa {cal.params.kappa:.3f} theta {cal.params.theta:.4f} "
        f"sigma {cal.params.sigma:.3f} rho {cal.params.rho:.3f}; {len(otm)} quotes, "
        f"RMSE {cal.rmse_vol_points:.2f} vol pts, {cal.iterations} iterations, "
        f"{1e3 * cal.seconds:.1f} ms, Feller {'met' if cal.feller else 'violated'}"
    )

    _section("One at-the-money put, four ways")
    expiry_t = float(surface.expiries[len(surface.expiries) // 2])
    k = float(np.round(spot))
    vol = float(surface.implied_vol(k, expiry_t))
    p = cal.params
    prices = {
        "Black-Scholes-Merton": black_scholes.price(spot, k, expiry_t, RATE, 0.0, vol, call=False),
        "CRR American, 500 steps": crr_binomial.price(
            spot, k, expiry_t, RATE, 0.0, vol, call=False, american=True, steps=500
        ),
        "Monte Carlo (anti + CV)": monte_carlo_pricer.european(
            spot, k, expiry_t, RATE, 0.0, vol, call=False, paths=200_000
        ).price,
        "Heston (calibrated)": heston_model.price(
            spot, k, expiry_t, RATE, 0.0, p.v0, p.kappa, p.theta, p.sigma, p.rho, call=False
        ),
    }
    g = black_scholes.greeks(spot, k, expiry_t, RATE, 0.0, vol, call=False)
    for name, value in prices.items():
        print(f"{name:>26}: {value:9.4f}")
    print(
        f"{'BSM Greeks':>26}: delta {g.delta:.4f} gamma {g.gamma:.5f} vega {g.vega:.3f} "
        f"theta {g.theta:.3f}/y"
    )

    _section("Sell one cash-secured put on the simulated exchange")
    broker = SimBroker(feed, clock, SimConfig(cash=Decimal(100_000)))
    puts = chain[(chain["type"] == "put") & (chain["strike"] <= 0.95 * spot)]
    target = puts[pd.to_datetime(puts["expiry"]) == pd.to_datetime(puts["expiry"]).min()]
    contract = target.sort_values("strike").iloc[-1]
    owner = Owner("options", "csp", f"demo-{today}-{contract['symbol']}")
    request = OrderRequest.option(
        contract["symbol"],
        1,
        "sell",
        "sell_to_open",
        limit_price=Decimal(str(contract["bid"])),
        owner=owner,
    )
    with Journal(journal_path) as journal:
        first_time = journal.record_order_intent(
            owner.client_order_id,
            owner.engine,
            owner.strategy,
            owner.decision_id,
            request.to_dict(),
            clock.now(),
        )
        if not first_time:  # this decision was journaled by an earlier run: never send it twice
            print(f"{owner.client_order_id} is already in {journal_path}; not sent again")
            return
        order = await broker.submit(request)
        journal.record_order_update(
            order.client_order_id,
            order.id,
            order.status.value,
            order.filled_qty,
            order.filled_avg_price,
            {},
            clock.now(),
        )
    account = await broker.account()
    print(
        f"{contract['symbol']} sell_to_open 1 @ {request.limit_price}: {order.status.value}, "
        f"filled {order.filled_qty} @ {order.filled_avg_price}"
    )
    print(f"cash {account.cash}, options buying power {account.options_buying_power}")
    print(f"journal: {journal_path}")


def main(argv: list[str] | None = None) -> None:
    """Run the demo from the command line (``v28quant-demo --help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--underlying", default="AAPL")
    parser.add_argument("--session", default="2022-06-15", help="trading day to replay")
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="SQLite journal to keep (default: a temporary one, removed at the end)",
    )
    args = parser.parse_args(argv)
    try:
        if args.journal is not None:
            asyncio.run(run(args.journal, args.underlying.upper(), args.session))
            return
        with tempfile.TemporaryDirectory(prefix="v28demo-") as folder:  # removed at the end
            asyncio.run(run(Path(folder) / "journal.sqlite", args.underlying.upper(), args.session))
        print("(the journal was temporary and is removed: --journal PATH keeps one)")
    except DemoArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
