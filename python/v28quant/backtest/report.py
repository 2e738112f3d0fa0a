"""The report folder of a simulated run: ``report.html``, PNG charts, ``metrics.json``, journal.

Charts (matplotlib, Agg backend): the equity curve, the drawdown, the exposure (gross market
value / equity) and each model's contribution (the sum over the run of the model's journaled
votes, value x confidence, per model). ``metrics.json`` holds the daily equity curve and every
number of ``v28quant.backtest.metrics`` (per engine too: realised, unrealised and net dollar
P&L, round trips, hit rate and commission, which add up to the equity change), with the equity
aggregates' standing against their threshold and the count of the options engine's declined
entries, from which a run that filled nothing says why (:func:`nothing_traded`);
``journal.sqlite`` is a consistent copy of the run's journal (SQLite online backup), so the
folder stands on its own.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from v28quant.backtest.metrics import compute_metrics
from v28quant.config import BacktestConfig
from v28quant.journal import Journal


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    return x


def model_contributions(journal: Journal) -> dict[str, dict[str, float]]:
    """Return per model: signal count, summed vote (value x confidence) and mean confidence."""
    sig = journal.signals()
    out: dict[str, dict[str, float]] = {}
    if sig.empty:
        return out
    sig = sig.assign(vote=sig["value"] * sig["confidence"])
    for model, g in sig.groupby("model"):
        out[str(model)] = {
            "signals": float(len(g)),
            "vote_sum": float(g["vote"].sum()),
            "abs_vote_sum": float(g["vote"].abs().sum()),
            "mean_confidence": float(g["confidence"].mean()),
        }
    return out


def _charts(
    folder: Path,
    days: list[date],
    equity: list[float],
    exposure: list[float],
    initial: float,
    contrib: dict[str, dict[str, float]],
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = []
    x = np.asarray(days, dtype="datetime64[D]")
    e = np.asarray(equity)
    peaks = np.maximum.accumulate(np.concatenate([[initial], e]))[1:]
    series = [
        ("equity_curve.png", "Equity (USD)", e),
        ("drawdown.png", "Drawdown (fraction of peak)", -(1 - e / peaks)),
        ("exposure.png", "Gross exposure / equity", np.asarray(exposure) / e),
    ]
    for fname, title, y in series:
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.plot(x, y, marker="o" if len(days) < 30 else None)
        if len(x) == 1:  # matplotlib's default span around one date is years wide
            ax.set_xlim(x[0] - np.timedelta64(1, "D"), x[0] + np.timedelta64(1, "D"))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(folder / fname, dpi=90)
        plt.close(fig)
        names.append(fname)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    models = sorted(contrib)
    ax.barh(models, [contrib[m]["vote_sum"] for m in models])
    ax.set_title("Per-model contribution: sum of value x confidence over the run")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(folder / "model_contribution.png", dpi=90)
    plt.close(fig)
    names.append("model_contribution.png")
    return names


def nothing_traded(metrics: dict[str, Any]) -> str:
    """Why a run filled no order, from its journal; "" when it filled any.

    Names the equity engine's most confident aggregate against the threshold in force
    (settings ``[aggregator] min_confidence``, ``[paper] min_confidence`` in paper mode) and
    counts the options engine's declined entries, whose reasons its ``no_entry`` decisions hold.
    """
    if metrics["fills"]:
        return ""
    parts = []
    agg = metrics.get("aggregates") or {}
    if agg:
        top = agg["highest"]
        need = " / ".join(f"{x:g}" for x in agg["min_confidence"])
        parts.append(
            f"equity: {agg['tradable']} of {agg['aggregates']} aggregates tradable; the most "
            f"confident, {top['symbol']} at {top['ts'][:16]} UTC, had {top['confidence']:.3f} "
            f"against min_confidence {need}"
        )
    declined = metrics.get("options_declined", 0)
    if declined:
        parts.append(f"options: {declined} entries declined (reasons: its no_entry decisions)")
    if not parts:
        return "No order was filled: no engine journaled a view."
    return "No order was filled. " + "; ".join(parts) + "."


#: Fewer daily returns than this get a warning beside the annualised ratios (a month).
SHORT_RUN = 21


#: The columns of the per-engine P&L table: metrics.json key, heading.
ENGINE_COLUMNS = (
    ("round_trips", "round trips"),
    ("hit_rate", "hit rate"),
    ("realised_pnl", "realised P&L"),
    ("unrealised_pnl", "unrealised P&L (at the last close's marks)"),
    ("commission", "commission"),
    ("net_pnl", "net P&L"),
)


def _engine_table(metrics: dict[str, Any]) -> str:
    """Return the per-engine P&L table, its total row and the account's equity change (USD)."""
    engines = metrics["engines"]
    total = {k: sum(e[k] for e in engines.values()) for k, _ in ENGINE_COLUMNS}
    total.update(round_trips=metrics["round_trips"], hit_rate=metrics["hit_rate"])
    rows = [*sorted(engines.items()), ("all engines", total)]

    def cell(key: str, v: Any) -> str:
        if key == "round_trips":
            return str(int(v))
        if key == "hit_rate":
            return f"{v:.3f}"
        return f"{v:,.2f}"

    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in ENGINE_COLUMNS)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{cell(k, e[k])}</td>" for k, _ in ENGINE_COLUMNS)
        + "</tr>"
        for name, e in rows
    )
    change = metrics["final_equity"] - metrics["initial_equity"]
    return (
        f"<h2>Engines (USD)</h2><table><tr><th>engine</th>{head}</tr>{body}</table>"
        f"<p>Account equity change: {change:,.2f}. Net P&amp;L = realised + unrealised - "
        "commission; slippage and spread are in the fill prices. Round trips pair fills first "
        "in, first out per engine and symbol; option settlements and the shares they move are "
        "the options engine's; the operator's flatten (risk) closes whichever engine's lots "
        "hold the symbol.</p>"
    )


def _html(metrics: dict[str, Any], charts: list[str], contrib: dict[str, Any]) -> str:
    rows = []
    for key in ("sessions", "initial_equity", "final_equity", "total_return", "sharpe"):
        rows.append((key, metrics[key]))
    for key in ("sortino", "max_drawdown", "turnover", "turnover_per_year", "hit_rate"):
        rows.append((key, metrics[key]))
    rows += [("round_trips", metrics["round_trips"]), ("realised_pnl", metrics["realised_pnl"])]
    rows.append(("fills", metrics["fills"]))
    rows.append(("traded_notional (an option contract = 100 shares)", metrics["traded_notional"]))
    labels = {"half_spread": "costs.half_spread (stock fills)"}
    rows += [(labels.get(k, f"costs.{k}"), v) for k, v in metrics["costs"].items()]
    dsr = metrics["deflated_sharpe"]
    rows.append((f"deflated_sharpe (trials = {dsr['trials']})", dsr["value"]))

    def fmt(v: Any) -> str:
        return f"{v:,.4f}" if isinstance(v, float) else html.escape(str(v))

    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    models = "".join(
        f"<tr><th>{html.escape(m)}</th><td>{int(c['signals'])}</td><td>{c['vote_sum']:.3f}</td>"
        f"<td>{c['mean_confidence']:.3f}</td></tr>"
        for m, c in sorted(contrib.items())
    )
    imgs = "".join(f'<p><img src="{c}" alt="{c}"></p>' for c in charts)
    why = nothing_traded(metrics)
    note = f"<p><strong>{html.escape(why)}</strong></p>" if why else ""
    if metrics["sessions"] < SHORT_RUN:
        note += (
            f"<p>The ratios come from {metrics['sessions']} daily return(s): too few to say "
            "much (annualised; NaN below 2 returns).</p>"
        )
    note += (
        "<p>Costs: commission per share of stock (none per option contract on the simulated "
        "exchange), slippage on every fill, half the replay's stock spread; an option's "
        "bid-ask cost is in its fill price.</p>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>v28quant report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
        "text-align:left}</style></head><body><h1>v28quant run report</h1>"
        "<p>Simulated exchange on replay data; risk-free rate 0; 252 sessions a year.</p>"
        f"{note}<table>{table}</table>{_engine_table(metrics)}"
        "<h2>Models</h2><table><tr><th>model</th><th>signals</th>"
        f"<th>sum of value x confidence</th><th>mean confidence</th></tr>{models}</table>"
        f"<h2>Charts</h2>{imgs}<p>Journal: journal.sqlite; numbers: metrics.json.</p>"
        "</body></html>"
    )


def _with_costs(fill: dict[str, Any], paid: Mapping[str, Mapping[str, Decimal]]) -> dict[str, Any]:
    """Return ``fill`` with the costs it paid (slippage, half spread), where its venue said."""
    return {**fill, **paid.get(fill["fill_id"], {})}


def write_report(
    folder: Path,
    journal_path: Path,
    equity: Sequence[tuple[date, Decimal, Decimal]],
    *,
    initial_equity: Decimal,
    trials: int,
    costs: BacktestConfig,
    marks: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """Write the report folder and return the metrics written to ``metrics.json``.

    Parameters
    ----------
    folder : Path
        Created if missing.
    journal_path : Path
        The run's journal (closed or open; copied with SQLite's backup API).
    equity : sequence of (date, equity, gross exposure)
        One row per session close, in order.
    initial_equity : Decimal
        Equity before the first session.
    trials : int
        Parameter sets tried to arrive at this run (deflated Sharpe).
    costs : BacktestConfig
        The simulated exchange's commission, slippage and spread.
    marks : mapping of symbol to price, optional
        The prices the last closing equity marked the positions at (its end-of-day roll-up):
        the engines' open lots are valued at them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with Journal(journal_path) as journal:
        paid = journal.fill_costs()
        fills = [_with_costs(f, paid) for f in journal.fills()]
        settlements = journal.settlements()
        splits = journal.splits()
        transfers = journal.transfers()
        contrib = model_contributions(journal)
        aggregates = journal.aggregate_summary()
        declined = journal.decision_count("options", "no_entry")
    days = [d for d, _, _ in equity]
    eq = [float(e) for _, e, _ in equity]
    exposure = [float(x) for _, _, x in equity]
    metrics = compute_metrics(
        eq,
        float(initial_equity),
        fills,
        trials=trials,
        commission_per_share=costs.commission_per_share,
        slippage_bps=costs.slippage_bps,
        spread_bps=costs.spread_bps,
        settlements=settlements,
        marks=marks,
        splits=splits,
        transfers=transfers,
    )
    metrics["equity_curve"] = [
        {"date": d.isoformat(), "equity": e, "exposure": x}
        for d, e, x in zip(days, eq, exposure, strict=True)
    ]
    metrics["model_contributions"] = contrib
    metrics["aggregates"] = aggregates
    metrics["options_declined"] = declined
    metrics["journal"] = "journal.sqlite"
    charts = _charts(folder, days, eq, exposure, float(initial_equity), contrib)
    (folder / "metrics.json").write_text(json.dumps(_finite(metrics), indent=1, default=str))
    (folder / "report.html").write_text(_html(metrics, charts, contrib), encoding="utf-8")
    copy = folder / "journal.sqlite"
    if copy.resolve() != journal_path.resolve():
        src = sqlite3.connect(str(journal_path))
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    return metrics
