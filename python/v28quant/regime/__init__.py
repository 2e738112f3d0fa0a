"""Market regime detectors and the controller that combines them.

:mod:`~v28quant.regime.hmm` (a Gaussian HMM on returns and realised volatility),
:mod:`~v28quant.regime.manifold` (the path of rolling (mean, vol) estimates in the Fisher-Rao
geometry of the normal family) and :mod:`~v28quant.regime.hierarchical` (market regime on top,
symbol regimes below, the risk multiplier). All share the labels of :data:`REGIME_LABELS`.
"""

from v28quant.regime._series import REGIME_LABELS

__all__ = ["REGIME_LABELS"]
