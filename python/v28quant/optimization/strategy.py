"""The built-in strategy evaluator: regime-weighted signal voting on the bundled daily history.

A vectorised daily model of the equity engine's decision path, net of costs:

1. Three causal signals per stock, each a value in [-1, 1] with a confidence in [0, 1]:
   ``momentum`` (t-statistic of the 121-session log return ending 5 sessions ago),
   ``mean_reversion`` (minus the z-score of the close against its 20-session mean) and
   ``trend`` (the 50/200-session moving-average gap over 5 %).
2. Regime probabilities per session from :class:`v28quant.regime.hmm.HmmRegimeDetector` on the
   market's daily log returns and EWMA volatility, fitted on the training dates only (seeded
   starts, the best log-likelihood kept) and read on every date by its forward filter (causal).
3. The aggregator's vote, as :class:`v28quant.signals.SignalAggregator` computes it, vectorised
   over sessions and stocks: weights mixed over the regime probabilities,
   w_m = sum_r P(r) W[r, m]; value = sum_m w_m c_m v_m / sum_m w_m c_m; confidence = the
   weighted mean confidence times the agreement 1 - D (D the weighted dispersion of the votes);
   no position below ``min_confidence``.
4. Sizing: weight = value * target_vol / EWMA vol, capped per stock and in gross; rebalanced every
   ``rebalance_days`` sessions; stock costs on every unit of turnover.
5. A covered-call sleeve on the S&P 500 index: hold the index, sell a call at K = S (1 + m) for
   ``tenor_days`` sessions, priced by Black-Scholes at the VIX (the market's 30-day implied
   volatility), marked daily, settled at intrinsic value at expiry; option spread and commission
   paid at each sale.

Returns are simple daily returns, fraction of capital; positions decided at the close of t earn
the return of t + 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from v28quant.calendar import ET
from v28quant.data.samples import History, sample_history
from v28quant.ml.features import TRADING_DAYS, ewma_vol
from v28quant.optimization.costs import CostModel
from v28quant.optimization.evaluation import WindowReturns
from v28quant.optimization.space import (
    MODELS,
    STRATEGY_LABEL_HORIZON,
    STRATEGY_SPACE,
    SearchSpace,
)
from v28quant.options import black_scholes
from v28quant.regime.hmm import HmmRegimeDetector

Array = NDArray[np.float64]


class _DropNonConvergence(logging.Filter):
    """Hide hmmlearn's note that EM's last step wobbled at the tolerance.

    A tuning run fits the regime HMM hundreds of times from several starts and keeps the best
    log-likelihood; the note would bury the run's own output.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the non-convergence note."""
        return "not converging" not in record.getMessage()


logging.getLogger("hmmlearn.base").addFilter(_DropNonConvergence())

DEFAULT_UNIVERSE = ("AAPL", "JNJ", "JPM", "KO", "MSFT", "PG", "WMT", "XOM")
WARMUP_SESSIONS = 260


def _closes(history: History, symbols: Sequence[str]) -> pd.DataFrame:
    """Date x symbol closes (New York session dates); rows with a missing close kept as NaN."""
    bars = history.bars
    missing = sorted(set(symbols) - set(bars["symbol"].unique()))
    if missing:
        raise ValueError(f"symbols not in the history: {missing}")
    wide = bars[bars["symbol"].isin(symbols)].pivot_table(
        index="timestamp", columns="symbol", values="close", aggfunc="last"
    )
    wide.index = pd.DatetimeIndex(wide.index).tz_convert(ET).tz_localize(None)
    return wide[list(symbols)].sort_index()


def _signals(close: pd.DataFrame) -> tuple[Array, Array]:
    """(values, confidences), each (dates, models, symbols)."""
    logp = np.log(close)
    r1 = logp.diff()
    sd_d = r1.rolling(126).std()
    z_mom = (logp.shift(5) - logp.shift(126)) / (sd_d * np.sqrt(121.0))
    sma20, sd20 = close.rolling(20).mean(), close.rolling(20).std()
    z_mr = (close - sma20) / sd20
    gap = close.rolling(50).mean() / close.rolling(200).mean() - 1.0
    values = [np.tanh(z_mom / 2.0), -np.tanh(z_mr / 2.0), (gap / 0.05).clip(-1.0, 1.0)]
    confs = [(z_mom.abs() / 2.0).clip(0, 1), (z_mr.abs() / 2.0).clip(0, 1), values[2].abs()]
    v = np.stack([x.to_numpy(np.float64) for x in values], axis=1)
    c = np.stack([x.to_numpy(np.float64) for x in confs], axis=1)
    return np.nan_to_num(v), np.nan_to_num(c)


class SampleStrategy:
    """Evaluator of the built-in strategy on the bundled sample history.

    Parameters
    ----------
    history : History, optional
        Daily bars; default :func:`v28quant.data.samples.sample_history`.
    universe : sequence of str
        Stocks traded.
    market, index, vol_index : str
        Market proxy for the regime, the index of the covered-call sleeve and its implied
        volatility index (VIX, in vol points).
    start, end : str
        First and last session evaluated (features warm up on the sessions before ``start``).
    costs : CostModel
        Commissions, spread and slippage.
    rate, div : float
        Continuously compounded risk-free rate and index dividend yield for option pricing.
    hmm_starts : int
        EM starts of the regime HMM per fit (the best log-likelihood is kept).
    """

    name = "sample-strategy"
    label_horizon = STRATEGY_LABEL_HORIZON
    space: SearchSpace = STRATEGY_SPACE

    def __init__(
        self,
        history: History | None = None,
        universe: Sequence[str] = DEFAULT_UNIVERSE,
        market: str = "SP500",
        index: str = "SPX",
        vol_index: str = "VIX",
        start: str = "2014-01-03",
        end: str = "2018-12-31",
        costs: CostModel | None = None,
        rate: float = 0.0,
        div: float = 0.02,
        hmm_starts: int = 3,
    ) -> None:
        if not universe:
            raise ValueError("universe is empty")
        if hmm_starts < 1:
            raise ValueError(f"hmm_starts must be >= 1, got {hmm_starts}")
        hist = history if history is not None else sample_history()
        wide = _closes(hist, [*universe, market, index, vol_index])
        wide = wide.dropna(subset=[*universe, market])
        # A session or two missing in an index file: the last close stands (at most 3 days).
        wide[[index, vol_index]] = wide[[index, vol_index]].ffill(limit=3)
        first = wide.index.searchsorted(pd.Timestamp(start))
        if first < WARMUP_SESSIONS:
            raise ValueError(
                f"start {start}: need {WARMUP_SESSIONS} sessions of history before it, have {first}"
            )
        wide = wide.iloc[first - WARMUP_SESSIONS :]
        wide = wide[wide.index <= pd.Timestamp(end)]
        if len(wide) <= WARMUP_SESSIONS + 1:
            raise ValueError(f"no sessions between {start} and {end} with every symbol")
        gaps = wide.iloc[WARMUP_SESSIONS:][[index, vol_index]].isna().sum()
        if gaps.any():
            raise ValueError(
                f"{index}/{vol_index} missing on sessions between {start} and {end}: "
                f"{gaps.to_dict()}; choose dates both cover"
            )
        self.universe = tuple(universe)
        self.costs = costs or CostModel()
        self.rate, self.div, self.hmm_starts = rate, div, hmm_starts
        stocks = wide[list(universe)]
        self._all_dates = pd.DatetimeIndex(wide.index)
        self._values, self._confs = _signals(stocks)
        self._ret = stocks.pct_change().fillna(0.0).to_numpy(np.float64)
        self._vol = np.column_stack(
            [ewma_vol(np.log(stocks[s]).diff().fillna(0.0)).to_numpy() for s in universe]
        )
        mlog = np.log(wide[market])
        self._mret = mlog.diff().fillna(0.0).to_numpy(np.float64)
        self._spot = wide[index].to_numpy(np.float64)
        self._iv = wide[vol_index].to_numpy(np.float64) / 100.0
        self._first = WARMUP_SESSIONS

    def dates(self) -> pd.DatetimeIndex:
        """Sessions that can be evaluated (after the warm-up)."""
        return self._all_dates[self._first :]

    # -- regime ------------------------------------------------------------------------------

    def _regime_probabilities(
        self, sl: slice, fit_rows: Array, p: Mapping[str, float], seed: int
    ) -> tuple[Array, tuple[str, ...]]:
        """P(regime) per session of ``sl`` (forward filter), the HMM fitted on ``fit_rows``."""
        det = HmmRegimeDetector(
            n_states=int(p["regime.n_states"]),
            seed=seed,
            n_starts=self.hmm_starts,
            vol_halflife=p["regime.vol_halflife"],
        )
        r = self._mret[sl]
        # hmmlearn's k-means start spins up every core; one thread is faster beside the other
        # workers and gives the same numbers wherever the task runs.
        with threadpool_limits(limits=1):
            det.fit(r[fit_rows])
            probs = det.filtered_probabilities(r)
        return probs.to_numpy(np.float64), tuple(str(c) for c in probs.columns)

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(
        self,
        params: Mapping[str, float],
        train: pd.DatetimeIndex,
        test: pd.DatetimeIndex,
        seed: int,
    ) -> WindowReturns:
        """Return net daily returns on ``train`` (HMM fitted there) and ``test`` (may be empty)."""
        p = self.space.validate(params)
        train_pos = self._all_dates.get_indexer(pd.DatetimeIndex(train))
        test_pos = self._all_dates.get_indexer(pd.DatetimeIndex(test))
        if (train_pos < 0).any() or (test_pos < 0).any():
            raise ValueError("train/test dates must be sessions of SampleStrategy.dates()")
        if len(train_pos) < 2 or train_pos.min() < self._first:
            raise ValueError("need >= 2 training dates, after the warm-up")
        if len(test_pos) and test_pos.min() <= train_pos.max():
            raise ValueError("test dates must follow the training dates")
        lo = int(train_pos.min())
        hi = int(test_pos.max() if len(test_pos) else train_pos.max()) + 1
        sl = slice(lo, hi)

        probs, labels = self._regime_probabilities(sl, train_pos - lo, p, seed)
        table = np.array([[p[f"weights.{r}.{m}"] for m in MODELS] for r in labels])
        w = (probs @ table)[:, :, None]  # (dates, models, 1): weights mixed over regimes
        v, c = self._values[sl], self._confs[sl]
        mass = (w * c).sum(axis=1)
        value = np.divide((w * c * v).sum(axis=1), mass, out=np.zeros_like(mass), where=mass > 0)
        spread = (w * c * (v - value[:, None, :]) ** 2).sum(axis=1)
        dispersion = np.divide(spread, mass, out=np.zeros_like(mass), where=mass > 0)
        wsum = w.sum(axis=1)
        mean_conf = np.divide(mass, wsum, out=np.zeros_like(mass), where=wsum > 0)
        conf = mean_conf * (1.0 - dispersion)
        value = np.where(conf >= p["aggregator.min_confidence"], value, 0.0)

        weights = self._sized(value, p, sl)
        equity, stock_costs, turnover = self._equity_returns(weights, sl)
        overlay, option_costs = self._overlay_returns(p, sl)
        ow = p["options.overlay_weight"]
        net = (1.0 - ow) * (equity - stock_costs) + ow * (overlay - option_costs)
        costs = (1.0 - ow) * stock_costs + ow * option_costs
        series = pd.Series(net, index=self._all_dates[sl])
        test_rows = test_pos - lo
        return WindowReturns(
            train=series.iloc[train_pos - lo],
            test=series.iloc[test_rows],
            test_costs=float(costs[test_rows].sum()),
            test_turnover=float(turnover[test_rows].mean()) if len(test_rows) else 0.0,
        )

    def _sized(self, value: Array, p: Mapping[str, float], sl: slice) -> Array:
        """Vol-targeted, capped weights, held between rebalances."""
        raw = value * p["sizing.target_vol"] / np.maximum(self._vol[sl], 1e-4)
        raw = raw.clip(-p["risk.max_weight"], p["risk.max_weight"])
        gross = np.abs(raw).sum(axis=1, keepdims=True)
        raw *= np.minimum(1.0, p["risk.max_gross"] / np.maximum(gross, 1e-12))
        k = int(p["sizing.rebalance_days"])
        held = np.arange(len(raw)) // k * k  # row of the last rebalance
        out: Array = raw[held]
        return out

    def _equity_returns(self, weights: Array, sl: slice) -> tuple[Array, Array, Array]:
        """(gross return, cost, turnover) per session; weights set at t earn t + 1."""
        prev = np.vstack([np.zeros((1, weights.shape[1])), weights[:-1]])
        gross = (prev * self._ret[sl]).sum(axis=1)
        turnover = np.abs(weights - prev).sum(axis=1)
        return gross, self.costs.stock_cost(turnover), turnover

    def _overlay_returns(self, p: Mapping[str, float], sl: slice) -> tuple[Array, Array]:
        """(gross return, cost) per session of long index + short call, rolled every tenor."""
        spot, iv = self._spot[sl], self._iv[sl]
        n, tenor = len(spot), int(p["options.tenor_days"])
        t = np.arange(n)
        roll = t // tenor * tenor  # session the held call was sold
        strike = spot[roll] * (1.0 + p["options.call_moneyness"])
        expiry = roll + tenor

        def call(s: Array, k: Array, sessions_left: Array, vol: Array) -> Array:
            out = black_scholes.price(
                s, k, sessions_left / TRADING_DAYS, self.rate, self.div, vol, call=True
            )
            return np.asarray(out, dtype=np.float64)

        sold = call(spot, strike, (expiry - t).astype(np.float64), iv)
        gross = np.zeros(n)
        # call sold at t - 1 (strike and expiry of roll[t - 1]) valued at t, settled if expired
        k_prev, e_prev = strike[:-1], expiry[:-1]
        held_now = call(spot[1:], k_prev, (e_prev - t[1:]).astype(np.float64), iv[1:])
        gross[1:] = (spot[1:] - spot[:-1] - (held_now - sold[:-1])) / spot[:-1]
        is_roll = roll == t
        cost = np.where(is_roll, self.costs.option_cost(sold, spot), 0.0)
        return gross, cost
