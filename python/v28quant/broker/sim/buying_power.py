"""Buying power and collateral: what an order needs before it is accepted, and what it holds.

A cash account (``SimConfig.multiplier=1``) buys with cash less what open orders and option
collateral hold, and cannot sell stock short. ``multiplier=2`` is a Reg-T-like margin account as
Alpaca paper gives for marginable stocks: excess equity is cash + 50 % of long stock - 150 % of
short stock less what orders and collateral hold; stock buying power is twice that (no 4x
intraday), and short sales are allowed against it, except of a stock in
``SimConfig.hard_to_borrow`` (refused as Alpaca refuses one it does not lend). Options are not
marginable: premiums and collateral come out of the excess itself. Options levels as Alpaca's:
1 covered calls and cash-secured puts, 2 long options, 3 multi-leg orders, whose worst payoff at
expiry is held; structures with unlimited loss are refused. A multi-leg order's net short calls
are covered by free long shares, as the risk gate counts them (``risk.options_need``): those
behind a covered call the order buys back are free for the call it sells (a roll in one order).
"""

from __future__ import annotations

from decimal import Decimal

from v28quant.broker.base import (
    CONTRACT_SIZE,
    InsufficientBuyingPower,
    Leg,
    OptionsLevelError,
    OrderRejected,
    OrderRequest,
)
from v28quant.broker.sim.state import ZERO, SimState, _is_option, _leg_sign, _legs_of, _Pos
from v28quant.occ import parse_occ
from v28quant.quotes import Quote


class BuyingPower(SimState):
    """Admission checks (options level, shares and contracts available, buying power)."""

    async def _quote(self, symbol: str) -> Quote:
        try:
            return await self._quotes.quote(symbol)
        except KeyError:
            raise OrderRejected(
                f"asset {symbol} is not tradable (no quote)", status=422, code=42210000
            ) from None

    async def _check_equity(
        self, req: OrderRequest, qty: Decimal, limit: Decimal | None
    ) -> tuple[Decimal, Decimal]:
        sym = req.symbol or ""
        q = await self._quote(sym)
        m = self._cfg.multiplier
        if req.side == "sell":
            avail = self._shares_available(sym)
            if m == 1 or avail > 0 or self._positions.get(sym, _Pos()).qty > 0:
                if qty > avail:
                    raise InsufficientBuyingPower(
                        f"insufficient qty available for order (requested: {qty}, "
                        f"available: {max(avail, ZERO)})",
                        status=403,
                        code=40310000,
                    )
                return ZERO, Decimal(1)
        # A buy, or (margin account, no long shares) a short sale: both use buying power.
        side = req.side or "buy"
        if side == "sell" and sym in self._cfg.hard_to_borrow:
            raise OrderRejected(f"asset {sym} cannot be sold short", status=403, code=40310000)
        price = limit if limit is not None else self._slip(q.ask if side == "buy" else q.bid, side)
        per_share = price + self._cfg.equity_commission_per_share
        need, bp = per_share * qty, await self._excess() * m
        if need > bp:
            raise InsufficientBuyingPower(
                f"insufficient buying power (need {need:.2f}, have {bp:.2f})",
                status=403,
                code=40310000,
            )
        return per_share / m, ZERO

    async def _check_options(
        self, legs: tuple[Leg, ...], qty: Decimal, limit: Decimal | None, multileg: bool
    ) -> tuple[Decimal, Decimal, dict[str, Decimal], Decimal]:
        """Check options level, positions and buying power for option legs.

        Returns what one unfilled unit holds (cash, shares) and the collateral a filled unit
        keeps (short legs, cash).
        """
        if self._level == 0:
            raise OptionsLevelError(
                "account is not approved for options trading", status=403, code=40310000
            )
        if multileg and self._level < 3:
            raise OptionsLevelError(
                f"multi-leg orders need options level 3, account has {self._level}",
                status=403,
                code=40310000,
            )
        quotes = {leg.occ_symbol: await self._quote(leg.occ_symbol) for leg in legs}
        for leg in legs:
            if leg.intent.endswith("_to_close"):
                have = self._positions.get(leg.occ_symbol, _Pos()).qty
                need_sign = 1 if leg.intent == "sell_to_close" else -1
                closing = self._closing_held(leg.occ_symbol, leg.side)
                avail = have * need_sign - closing
                if avail < qty * leg.ratio:
                    raise InsufficientBuyingPower(
                        f"insufficient qty available for order (requested: {qty * leg.ratio}, "
                        f"available: {max(avail, ZERO)}, symbol: {leg.occ_symbol})",
                        status=403,
                        code=40310000,
                    )
        opening = [leg for leg in legs if leg.intent.endswith("_to_open")]
        shorts = {leg.occ_symbol: Decimal(leg.ratio) for leg in opening if leg.side == "sell"}
        # Net premium per unit at the current quotes (debit > 0), or the limit if given.
        net = sum(
            (
                _leg_sign(leg)
                * leg.ratio
                * (quotes[leg.occ_symbol].ask if leg.side == "buy" else quotes[leg.occ_symbol].bid)
                for leg in legs
            ),
            ZERO,
        )
        if limit is None:
            price = net
        else:  # a single-leg limit is a price per share; a sell receives it
            price = limit if multileg else _leg_sign(legs[0]) * limit
        debit = max(price, ZERO) * CONTRACT_SIZE
        coll_cash, shares_symbol, shares_per_unit = ZERO, None, ZERO
        if multileg:
            held = _at_last_expiry(opening)
            lots = self._covering_lots(legs, held, qty)
            coll_cash = _worst_payoff_loss(held, lots)
            if lots:
                shares_symbol = parse_occ(legs[0].occ_symbol).underlying
                shares_per_unit = lots * CONTRACT_SIZE
        elif opening:
            leg = opening[0]
            occ = parse_occ(leg.occ_symbol)
            if leg.side == "buy" and self._level < 2:
                raise OptionsLevelError(
                    f"buying options needs options level 2, account has {self._level}",
                    status=403,
                    code=40310000,
                )
            if leg.side == "sell" and occ.call:
                shares_symbol, shares_per_unit = occ.underlying, CONTRACT_SIZE
                avail = self._shares_available(occ.underlying)
                if avail < CONTRACT_SIZE * qty:
                    raise InsufficientBuyingPower(
                        f"insufficient underlying qty available for covered call (required: "
                        f"{CONTRACT_SIZE * qty}, available: {avail})",
                        status=403,
                        code=40310000,
                    )
            elif leg.side == "sell":
                coll_cash = occ.strike * CONTRACT_SIZE
        commission = self._cfg.option_commission_per_contract * sum(
            (Decimal(leg.ratio) for leg in legs), ZERO
        )
        per_unit = debit + coll_cash + commission
        excess = await self._excess()
        if per_unit * qty > excess:
            raise InsufficientBuyingPower(
                f"insufficient options buying power (need {per_unit * qty:.2f}, have {excess:.2f})",
                status=403,
                code=40310000,
            )
        if shares_symbol is not None and not multileg:
            shorts = {legs[0].occ_symbol: Decimal(1)}
            return debit + commission, shares_per_unit, shorts, coll_cash
        if shares_symbol is not None:
            return debit + coll_cash + commission, shares_per_unit, shorts, coll_cash
        return debit + coll_cash + commission, ZERO, shorts, coll_cash

    async def _excess(self) -> Decimal:
        """Excess equity: what new positions may use (x multiplier for stock)."""
        held = sum((o.remaining * o.hold_cash for o in self._orders.values() if o.is_open), ZERO)
        coll = sum((c.units * c.cash_per_unit for c in self._collateral), ZERO)
        excess = self._cash - held - coll
        if self._cfg.multiplier == 1:
            return excess  # a cash account: long stock is fully paid, no shorts
        for sym, p in self._positions.items():
            if _is_option(sym):
                continue
            mv = p.qty * await self._mark(sym, p)
            # Reg T initial margin: 50 % of a long; 150 % of a short (proceeds + 50 %).
            excess += mv / 2 if mv > 0 else mv * Decimal("1.5")
        return excess

    def _covering_lots(self, legs: tuple[Leg, ...], opening: list[Leg], qty: Decimal) -> Decimal:
        """Return the 100-share lots that cover one unit of a multi-leg order's net short calls.

        Long shares cover them where free: not behind another short call, nor held by an open
        order, except those behind the covered calls the order itself buys back (a covered
        call rolled in one order). ``InsufficientBuyingPower`` where the shares fall short.
        """
        net = sum((_leg_sign(g) * g.ratio for g in opening if parse_occ(g.occ_symbol).call), 0)
        short_calls = Decimal(max(-net, 0))
        if not short_calls:
            return ZERO
        underlying = parse_occ(legs[0].occ_symbol).underlying
        bought_back = {g.occ_symbol: qty * g.ratio for g in legs if g.intent == "buy_to_close"}
        freed = ZERO
        for c in self._collateral:
            if c.shares_symbol != underlying:
                continue
            calls = ZERO
            for sym, per in c.shorts.items():
                contracts = min(c.units * per, bought_back.get(sym, ZERO))
                bought_back[sym] = bought_back.get(sym, ZERO) - contracts
                calls += contracts
            freed += min(calls * CONTRACT_SIZE, c.units * c.shares_per_unit)
        if short_calls * qty * CONTRACT_SIZE > self._shares_available(underlying) + freed:
            raise InsufficientBuyingPower(
                "uncovered short calls: unlimited loss is not permitted", status=403, code=40310000
            )
        return short_calls

    def _shares_available(self, symbol: str) -> Decimal:
        have = self._positions.get(symbol, _Pos()).qty
        held = ZERO
        for o in self._orders.values():
            if not o.is_open or not o.hold_shares:
                continue
            if o.req.kind == "equity" and o.req.symbol == symbol:
                held += o.remaining
            elif (
                o.req.kind != "equity"
                and parse_occ(_legs_of(o.req)[0].occ_symbol).underlying == symbol
            ):
                held += o.remaining * o.hold_shares
        held += sum(
            (c.units * c.shares_per_unit for c in self._collateral if c.shares_symbol == symbol),
            ZERO,
        )
        return have - held

    def _closing_held(self, symbol: str, side: str) -> Decimal:
        """Contracts of ``symbol`` already being closed by open orders on ``side``."""
        total = ZERO
        for o in self._orders.values():
            if not o.is_open:
                continue
            for leg in _legs_of(o.req):
                if (
                    leg.occ_symbol == symbol
                    and leg.side == side
                    and leg.intent.endswith("_to_close")
                ):
                    total += o.remaining * leg.ratio
        return total


def _at_last_expiry(legs: list[Leg]) -> list[Leg]:
    """Return the opening legs still there at the last short leg's expiry.

    A long leg expiring before a short one covers nothing after it: a short far call over a
    long near call is a call sold uncovered, as the risk gate counts it.
    """
    expiry = {g.occ_symbol: parse_occ(g.occ_symbol).expiry for g in legs}
    last = max((expiry[g.occ_symbol] for g in legs if g.side == "sell"), default=None)
    return [g for g in legs if g.side == "sell" or last is None or expiry[g.occ_symbol] >= last]


def _worst_payoff_loss(legs: list[Leg], lots: Decimal = ZERO) -> Decimal:
    """Largest loss at expiry of option legs over every underlying price (dollars per unit).

    Premiums aside; ``lots`` of 100 shares cover as many short calls (their value at expiry
    counts, as a call struck at 0). ``InsufficientBuyingPower`` if the loss is unbounded (net
    short calls beyond ``lots``).

    The payoff is piecewise linear in the underlying price S with kinks at the strikes, so its
    minimum over S >= 0 is at S = 0, at a strike, or at S -> infinity (slope = net calls held).
    """
    if not legs:
        return ZERO
    parsed = [(parse_occ(leg.occ_symbol), _leg_sign(leg) * leg.ratio) for leg in legs]
    if sum((n for occ, n in parsed if occ.call), 0) + lots < 0:
        raise InsufficientBuyingPower(
            "uncovered short calls: unlimited loss is not permitted", status=403, code=40310000
        )

    def payoff(s: Decimal) -> Decimal:
        return sum(
            (
                n * (max(s - occ.strike, ZERO) if occ.call else max(occ.strike - s, ZERO))
                for occ, n in parsed
            ),
            lots * s,
        )

    worst = min(payoff(s) for s in [ZERO, *(occ.strike for occ, _ in parsed)])
    return max(-worst, ZERO) * CONTRACT_SIZE
