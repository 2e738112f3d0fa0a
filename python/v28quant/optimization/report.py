"""HTML + PNG reports of a walk-forward and, after tuning, of the Optuna study.

Charts: out-of-sample equity per window, in-sample vs out-of-sample Sharpe per window,
parameter stability across windows; with a study, the optimisation history and the parameter
importance (Optuna's fANOVA evaluator, seeded).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server
import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.figure import Figure

from v28quant.optimization.space import SearchSpace
from v28quant.optimization.walkforward import WalkForwardReport


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def equity_chart(report: WalkForwardReport, path: Path) -> str:
    """OOS equity of each window (from 1 at its start) and of the stitched record."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5))
    for w in report.windows:
        eq = (1.0 + w.oos_returns).cumprod()
        ax1.plot(eq.index, eq.to_numpy(), label=f"window {w.index} (SR {w.oos_sharpe:.2f})")
    ax1.set_title("Out-of-sample equity per window, net of costs")
    ax1.legend(fontsize=8)
    stitched = (1.0 + report.oos_returns).cumprod()
    ax2.plot(stitched.index, stitched.to_numpy(), color="black")
    for w in report.windows:
        ax2.axvline(w.test_start, color="grey", lw=0.6, ls=":")
    ax2.set_title(f"Stitched out-of-sample equity (Sharpe {report.oos_sharpe:.2f})")
    return _save(fig, path)


def sharpe_chart(report: WalkForwardReport, path: Path) -> str:
    """In-sample vs out-of-sample annualised Sharpe ratio per window."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(report.windows))
    ax.bar(x - 0.2, [w.is_sharpe for w in report.windows], 0.4, label="in-sample")
    ax.bar(x + 0.2, [w.oos_sharpe for w in report.windows], 0.4, label="out-of-sample")
    ax.set_xticks(x, [f"w{w.index}" for w in report.windows])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_title("Sharpe ratio per window (annualised, net of costs)")
    ax.legend()
    return _save(fig, path)


def stability_chart(report: WalkForwardReport, space: SearchSpace, path: Path) -> str:
    """Chosen value of each parameter per window, as a share of its search range."""
    names = [p.name for p in space.params if p.name in report.stability]
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.28 * len(names) + 1)))
    ys = np.arange(len(names))
    for w in report.windows:
        xs = [space[n].unit(float(w.params[n])) for n in names]
        ax.scatter(xs, ys, label=f"window {w.index}", s=18)
    ax.set_yticks(ys, names, fontsize=7)
    ax.set_xlim(-0.05, 1.05)
    ax.set_title("Parameters chosen per window (share of the search range)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def history_chart(study: optuna.Study, path: Path) -> str:
    """Objective per trial (pruned trials at their last reported value) and best so far."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    ax.scatter(
        [t.number for t in done], [float(t.value or 0.0) for t in done], s=14, label="complete"
    )
    pruned_at = [
        (t.number, t.intermediate_values[max(t.intermediate_values)])
        for t in pruned
        if t.intermediate_values
    ]
    if pruned_at:
        xs, ys = zip(*pruned_at, strict=True)
        ax.scatter(xs, ys, s=14, marker="x", color="grey", label="pruned")
    if done:
        order = sorted(done, key=lambda t: t.number)
        best = np.maximum.accumulate([t.value or -math.inf for t in order])
        ax.step([t.number for t in order], best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("OOS Sharpe (annualised)")
    ax.set_title("Optimisation history")
    ax.legend(fontsize=8)
    return _save(fig, path)


def importance_chart(study: optuna.Study, path: Path, seed: int = 0) -> str | None:
    """Chart the fANOVA importance of the top 15 parameters; None with too few trials."""
    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    except (RuntimeError, ValueError):
        return None
    top = list(imp.items())[:15][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Parameter importance (fANOVA)")
    return _save(fig, path)


def _table(rows: list[list[str]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def write_html(
    report: WalkForwardReport,
    out_dir: str | Path,
    space: SearchSpace,
    study: optuna.Study | None = None,
) -> Path:
    """Write ``report.html`` and its PNG charts into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    imgs = [equity_chart(report, out / "oos_equity.png"), sharpe_chart(report, out / "sharpe.png")]
    if report.mode != "fixed":
        imgs.append(stability_chart(report, space, out / "stability.png"))
    if study is not None:
        imgs.append(history_chart(study, out / "history.png"))
        imp = importance_chart(study, out / "importance.png", report.seed)
        if imp:
            imgs.append(imp)
    d = report.dsr
    summary = [
        ["verdict", report.verdict],
        ["mode", report.mode],
        ["windows", f"{report.scheme.n_windows} {report.scheme.kind}"],
        [
            "purge / embargo",
            f"label horizon {report.scheme.label_horizon}, embargo {report.scheme.gap} sessions",
        ],
        ["trials actually run", str(report.n_trials)],
        ["OOS Sharpe (annualised)", f"{report.oos_sharpe:.3f}"],
        ["mean IS Sharpe", f"{report.is_sharpe:.3f}"],
        ["IS to OOS decay", "n/a" if math.isnan(report.decay) else f"{report.decay:.1%}"],
        ["deflated Sharpe ratio", f"{d.dsr:.4f} (needs {report.min_dsr})"],
        ["SR0 (expected max of trials, annualised)", f"{d.benchmark * math.sqrt(252):.3f}"],
        ["OOS skew / kurtosis / days", f"{d.skew:.2f} / {d.kurtosis:.2f} / {d.n}"],
    ]
    if report.search is not None:  # a tuned set: is the evidence out of sample for its search?
        s = report.search
        summary.append(
            [
                "tuned on",
                f"{s.study}: {s.first_session:%Y-%m-%d}..{s.last_session:%Y-%m-%d}; "
                + (
                    "every test window after it (held out)"
                    if report.held_out
                    else "test windows inside it: not held out, promote refuses it"
                ),
            ]
        )
    windows = [
        [
            str(w.index),
            f"{w.train_start:%Y-%m-%d}..{w.train_end:%Y-%m-%d}",
            f"{w.test_start:%Y-%m-%d}..{w.test_end:%Y-%m-%d}",
            f"{w.is_sharpe:.2f}",
            f"{w.oos_sharpe:.2f}",
            f"{w.test_costs:.4f}",
            f"{w.test_turnover:.3f}",
            str(w.n_trials),
        ]
        for w in report.windows
    ]
    stab = [
        [k, f"{v['mean']:.4g}", f"{v['sd']:.4g}", f"{v['unit_sd']:.3f}"]
        for k, v in sorted(report.stability.items(), key=lambda kv: -kv[1]["unit_sd"])
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>v28quant walk-forward</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        "table{border-collapse:collapse;margin:8px 0}</style></head><body>",
        f"<h1>Walk-forward: {html.escape(report.evaluator)}</h1>",
        _table(summary, ["", ""]),
        "<h2>Windows (costs: fraction of capital; turnover: mean daily)</h2>",
        _table(windows, ["#", "train", "test", "IS SR", "OOS SR", "costs", "turnover", "trials"]),
        "<h2>Parameter stability across windows (unit s.d. 0.29 = random)</h2>",
        _table(stab, ["parameter", "mean", "s.d.", "unit s.d."]),
        "<h2>Candidate parameters</h2>",
        _table([[k, f"{v:.6g}"] for k, v in report.candidate.items()], ["parameter", "value"]),
        *[f"<p><img src='{html.escape(i)}' alt='{html.escape(i)}'></p>" for i in imgs],
        "</body></html>",
    ]
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
