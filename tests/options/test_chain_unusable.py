"""``ChainUnusable``: the data condition's reason and detail survive a copy."""

from __future__ import annotations

import pickle

from v28quant.options.errors import ChainUnusable


def test_a_pickled_chain_unusable_keeps_its_reason_and_detail() -> None:
    exc = ChainUnusable("no liquid contracts in the chain", "dropped: {'no_bid': 12}")
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, ValueError)
    assert (back.reason, back.detail) == (exc.reason, exc.detail)
    assert str(back) == "no liquid contracts in the chain (dropped: {'no_bid': 12})"
