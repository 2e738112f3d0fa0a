"""``python -m v28quant.optimization``: the tune, walk-forward and promote commands."""

from v28quant.optimization.cli import main

raise SystemExit(main())
