"""The v28quant production runner: ``python run_v28_production.py --mode live|paper|backtest``.

Thin on purpose: everything lives in ``v28quant.runner`` (see ``--help``).
"""

import sys

from v28quant.runner import main

if __name__ == "__main__":
    sys.exit(main())
