"""Research at scale: purged walk-forward optimisation and Bayesian tuning on Dask.

* :mod:`~v28quant.optimization.windows`: anchored and rolling walk-forward windows, purged and
  embargoed by the label horizon.
* :mod:`~v28quant.optimization.sharpe`: probabilistic and deflated Sharpe ratios.
* :mod:`~v28quant.optimization.walkforward`: the walk-forward optimiser and its report.
* :mod:`~v28quant.optimization.tuner`: the Optuna tuner (TPE, median pruning, shared storage).
* :mod:`~v28quant.optimization.promote`: the only way a parameter set reaches live trading.
* :mod:`~v28quant.optimization.cli`: ``tune``, ``walk-forward`` and ``promote`` subcommands.

Submodules are imported on demand so that importing this package loads neither Optuna nor Dask.
"""
