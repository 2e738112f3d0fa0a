"""The v28quant production runner: ``python run_v28_production.py --mode live|paper|backtest``.

Thin on purpose: everything lives in ``v28quant.runner`` (see ``--help``).
"""

import sys

from v28quant.memory import use_system_allocator

if __name__ == "__main__":
    use_system_allocator()  # before anything is allocated: a process that runs for weeks
    from v28quant.runner import main

    sys.exit(main())
