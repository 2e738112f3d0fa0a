"""AlpacaBroker: the ``Broker`` protocol on alpaca-py's ``TradingClient`` (paper or live).

With ``data.alpaca`` the only module that calls ``alpaca.trading`` (set-up, calls off the event
loop, 429s and paging are shared in ``v28quant.alpaca``). What we add on top of the SDK:

- **Idempotent submit.** The ``client_order_id`` comes from the order's ``Owner``. After a
  timeout, a connection error, a 5xx or a 2xx we cannot read, the outcome is unknown: we look the
  order up by its ``client_order_id`` and return it if it exists; only if the venue says it has
  no such order do we send it again. A 422 "client_order_id must be unique" resolves to the
  existing order (``SubmitOutcomeUnknown`` while a look-up cannot find it: it exists). Once an
  attempt was ambiguous, a later refusal is checked by a final look-up (the first attempt may
  have landed and used the buying power): found, it is returned; not found,
  ``SubmitOutcomeUnknown``. An order found under our id that differs from the request
  raises ``ClientOrderIdConflict``. If a look-up itself fails we raise rather than guess.
- **Rate limiting.** The account's ``RateLimiter``; 429s wait until ``X-Ratelimit-Reset``.
- **Timeouts** on every request (the SDK sets none).
- **Errors.** ``APIError`` becomes a ``BrokerError`` subclass with the venue's message;
  ``.code``/``.message`` are read defensively (a 401 body has no code, a proxy's 502 no JSON).
- **Activities** (fills, OPEXC/OPASN/OPEXP/OPTRD) via the raw REST endpoint, paged, since the
  SDK has no method for them; option contracts paged too; orders paged past the endpoint's 500
  with ``until`` (newest first), since it has no token.

Keys are passed to the SDK and nowhere else; nothing here logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    QueryOrderStatus,
)
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    ReplaceOrderRequest,
)
from pydantic import ValidationError

from v28quant.alpaca.config import LIVE_URL, PAPER_URL, AlpacaConfig
from v28quant.alpaca.convert import (
    dec_or_none,
    enum_value,
    is_duplicate_cid,
    map_api_error,
    to_activity,
    to_order,
    to_sdk_request,
    whole_qty,
)
from v28quant.alpaca.ratelimit import RateLimiter, account_limiter
from v28quant.alpaca.sdk import call_off_loop, option_contract_pages, prepare_client
from v28quant.broker.base import (
    Account,
    Activity,
    Asset,
    BrokerError,
    BrokerUnavailable,
    ClientOrderIdConflict,
    MarketClock,
    Order,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    Position,
    RateLimited,
    SubmitOutcomeUnknown,
    TradingDay,
    UnreadableResponse,
    parse_client_order_id,
    replacement_client_order_id,
    request_differences,
)
from v28quant.calendar import ET

log = logging.getLogger(__name__)


class AlpacaBroker:
    """``Broker`` on Alpaca.

    Parameters
    ----------
    key_id, secret_key
        Alpaca API keys.
    url
        Trading endpoint (``url_override``); ``None``: Alpaca's paper or live URL.
    live
        Live account when ``url`` is ``None``.
    limiter
        The trading API's ``RateLimiter``; by default a new one under 200 requests/minute.
    timeout_s
        Per-request HTTP timeout in seconds.
    max_attempts
        Attempts per call on 429s, and per read / per submit on transient failures.
    backoff_s
        First pause between transient-failure retries (doubles each time).
    """

    name = "alpaca"

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        url: str | None = None,
        live: bool = False,
        limiter: RateLimiter | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        activities_page_size: int = 100,
        orders_page_size: int = 500,
    ) -> None:
        cfg = AlpacaConfig(
            key_id=key_id,
            secret_key=secret_key,
            trading_url=url or (LIVE_URL if live else PAPER_URL),
            live=live,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_s=backoff_s,
        )
        self.config = cfg
        self._client = TradingClient(key_id, secret_key, paper=not live, url_override=url)
        self._limiter = limiter or account_limiter(key_id, cfg.rate_limit_per_min)
        prepare_client(self._client, cfg.timeout_s, self._limiter)
        self._max_attempts = cfg.max_attempts
        self._backoff_s = cfg.backoff_s
        self._page = activities_page_size
        if not 1 <= orders_page_size <= 500:
            raise ValueError(
                f"orders_page_size must be 1-500 (Alpaca's limit), got {orders_page_size}"
            )
        self._orders_page = orders_page_size
        self.live = live

    @classmethod
    def from_config(
        cls, config: AlpacaConfig, *, limiter: RateLimiter | None = None
    ) -> AlpacaBroker:
        """Build from an ``AlpacaConfig``; by default on the account's shared rate limiter."""
        return cls(
            config.key_id,
            config.secret_key,
            url=config.trading_url,
            live=config.live,
            limiter=limiter or account_limiter(config.key_id, config.rate_limit_per_min),
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            backoff_s=config.backoff_s,
        )

    @classmethod
    def from_settings(cls, settings: Any, *, live: bool = False) -> AlpacaBroker:
        """Build from ``v28quant.settings.Settings`` (endpoints checked for the mode).

        Raises
        ------
        SettingsError
            A trading host this mode may not use (see ``v28quant.alpaca.config``).
        """
        return cls.from_config(AlpacaConfig.from_settings(settings, live=live))

    @property
    def limiter(self) -> RateLimiter:
        """The account's rate limiter (pass it to ``AlpacaData`` on the same account)."""
        return self._limiter

    def __repr__(self) -> str:
        """Describe the broker without its keys."""
        return f"AlpacaBroker(live={self.live})"

    # ------------------------------------------------------------------ plumbing

    async def _call(self, fn: Callable[..., Any], *args: Any, retry_transient: bool = True) -> Any:
        """Run one SDK call in the pool, rate-limited, retrying what may be retried.

        429s wait and retry; transient failures (timeouts, connection errors, 5xx) retry only
        when ``retry_transient`` (reads).
        """
        last: BrokerError | None = None
        for attempt in range(self._max_attempts):
            await self._limiter.acquire()
            try:
                return await call_off_loop(fn, *args)
            except APIError as e:
                err = map_api_error(e)
                if e.status_code == 429:
                    headers = e.response.headers if e.response is not None else {}
                    wait = self._limiter.on_429(headers)
                    log.warning("Alpaca 429: waiting %.1f s before retrying", wait)
                    last = err
                    continue
                if isinstance(err, BrokerUnavailable) and retry_transient:
                    last = err
                else:
                    raise err from None
            except (requests.RequestException, ValueError) as e:
                # Timeouts, dropped connections, truncated or non-JSON bodies (a proxy's HTML
                # page): the outcome is unknown, which submit resolves by looking the order up.
                # A ValidationError is a well-formed body alpaca-py's model refuses: what the
                # venue did is as unknown as after a timeout.
                if isinstance(e, ValidationError):
                    last = UnreadableResponse(
                        "Alpaca response did not match alpaca-py's model: "
                        f"{e.errors()[0].get('msg')}"
                    )
                else:
                    last = BrokerUnavailable(f"Alpaca unreachable: {type(e).__name__}")
                if not retry_transient:
                    raise last from None
            if attempt + 1 < self._max_attempts:
                await self._limiter.pause(self._backoff_s * 2**attempt)
        assert last is not None
        raise last

    # ------------------------------------------------------------------ protocol

    async def account(self) -> Account:
        """Return the account's balances and options level."""
        a = await self._call(self._client.get_account)
        level = a.options_trading_level
        if level is None:
            level = a.options_approved_level or 0
        z = Decimal(0)
        return Account(
            id=str(a.id),
            status=enum_value(a.status),
            cash=dec_or_none(a.cash) or z,
            equity=dec_or_none(a.equity) or z,
            buying_power=dec_or_none(a.buying_power) or z,
            options_buying_power=dec_or_none(a.options_buying_power) or z,
            options_level=int(level),
            portfolio_value=dec_or_none(a.portfolio_value) or z,
            long_market_value=dec_or_none(a.long_market_value) or z,
            short_market_value=dec_or_none(a.short_market_value) or z,
            trading_blocked=bool(a.trading_blocked),
            currency=a.currency or "USD",
            daytrade_count=None if a.daytrade_count is None else int(a.daytrade_count),
            last_equity=dec_or_none(a.last_equity),
            shorting_enabled=bool(a.shorting_enabled),
        )

    async def asset(self, symbol: str) -> Asset:
        """Return the stock's asset flags (tradable, shortable, easy to borrow, fractionable)."""
        a = await self._call(self._client.get_asset, symbol)
        return Asset(
            symbol=a.symbol,
            tradable=bool(a.tradable),
            shortable=bool(a.shortable),
            easy_to_borrow=bool(a.easy_to_borrow),
            fractionable=bool(a.fractionable),
        )

    async def positions(self) -> list[Position]:
        """Return every open position."""
        rows = await self._call(self._client.get_all_positions)
        return [
            Position(
                symbol=p.symbol,
                qty=Decimal(p.qty),
                avg_entry_price=Decimal(p.avg_entry_price),
                asset_class=enum_value(p.asset_class),
                market_value=dec_or_none(p.market_value),
                cost_basis=dec_or_none(p.cost_basis),
                current_price=dec_or_none(p.current_price),
            )
            for p in rows
        ]

    async def orders(self, status: Literal["open", "closed", "all"] = "open") -> list[Order]:
        """Return orders by status, newest first, all pages."""
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        found: dict[str, Order] = {}
        until: datetime | None = None
        while True:  # newest first; each page ends where the previous one's oldest order is
            req = GetOrdersRequest(
                status=QueryOrderStatus(status),
                nested=True,
                limit=self._orders_page,
                direction=Sort.DESC,
                until=until,
            )
            page = [to_order(o) for o in await self._call(self._client.get_orders, req)]
            fresh = [o for o in page if o.id not in found]
            found.update((o.id, o) for o in fresh)
            if len(page) < self._orders_page:
                return list(found.values())
            stamps = [o.submitted_at for o in page]
            if not fresh or None in stamps:
                log.warning(
                    "orders(): %d orders share one submission time or have none; stopping after %d",
                    len(page),
                    len(found),
                )
                return list(found.values())
            # ``until`` is exclusive: 1 us past the oldest re-reads orders tied with it.
            until = min(t for t in stamps if t is not None) + timedelta(microseconds=1)

    async def order_by_client_id(self, client_order_id: str) -> Order | None:
        """Return the order with this client order id, or None."""
        try:
            o = await self._call(self._client.get_order_by_client_id, client_order_id)
        except OrderNotFound:
            return None
        return to_order(o)

    async def submit(self, request: OrderRequest) -> Order:
        """Submit idempotently (see the module docstring).

        Raises
        ------
        ClientOrderIdConflict
            The venue holds a different order under this request's client order id.
        SubmitOutcomeUnknown
            An attempt was ambiguous and a look-up could not find the order.
        """
        found = await self._submit_idempotent(
            to_sdk_request(request), request.client_order_id, self._client.submit_order
        )
        diffs = request_differences(found, request)
        if diffs:
            raise ClientOrderIdConflict(
                f"Alpaca holds order {found.id} under {request.client_order_id} for another "
                "request: " + "; ".join(diffs)
            )
        return found

    async def _submit_idempotent(self, sdk_req: Any, cid: str, send: Callable[[Any], Any]) -> Order:
        ambiguous: BrokerError | None = None  # the first attempt whose outcome is unknown
        for attempt in range(self._max_attempts):
            try:
                return to_order(await self._call(send, sdk_req, retry_transient=False))
            except OrderRejected as e:
                duplicate = is_duplicate_cid(e)
                if ambiguous is None and not duplicate:
                    raise  # a first-attempt refusal: definite
                found = await self.order_by_client_id(cid)
                if found is not None:
                    log.info("order %s already at Alpaca (%s)", cid, e)
                    return found
                # A duplicate id means Alpaca holds the order and the look-up lags: never a
                # refusal, or nothing would look for the order that is working there.
                why = "Alpaca holds an order under this id" if duplicate else "refused"
                raise SubmitOutcomeUnknown(
                    f"submit of {cid}: {why} ({e}) after an attempt whose outcome is unknown "
                    f"({ambiguous or 'an earlier process'}), and a look-up finds no order; "
                    "it may yet appear",
                    status=e.status,
                    code=e.code,
                ) from None
            except RateLimited as e:
                if ambiguous is None:
                    raise  # every attempt was a 429: nothing reached the venue
                raise SubmitOutcomeUnknown(
                    f"submit of {cid}: rate limited ({e}) after an attempt whose outcome is "
                    f"unknown ({ambiguous})"
                ) from None
            except BrokerUnavailable as e:
                ambiguous = ambiguous or e
                # Outcome unknown: ask before acting. A failing look-up propagates.
                found = await self.order_by_client_id(cid)
                if found is not None:
                    log.warning(
                        "submit of %s failed (%s) but the order exists: %s", cid, e, found.id
                    )
                    return found
                log.warning(
                    "submit of %s failed (%s) and Alpaca has no such order; resending (attempt %d)",
                    cid,
                    e,
                    attempt + 2,
                )
                if attempt + 1 < self._max_attempts:
                    await self._limiter.pause(self._backoff_s * 2**attempt)
        raise SubmitOutcomeUnknown(
            f"could not submit {cid} after {self._max_attempts} attempts ({ambiguous})"
        )

    async def cancel(self, order_id: str) -> None:
        """Cancel one order by venue id."""
        await self._call(self._client.cancel_order_by_id, order_id, retry_transient=False)

    async def replace(
        self, order_id: str, qty: Decimal | int | None = None, limit_price: Decimal | None = None
    ) -> Order:
        """Replace an open order; returns the new order."""
        old = to_order(await self._call(self._client.get_order_by_id, order_id))
        cid = (
            replacement_client_order_id(old.client_order_id)
            if parse_client_order_id(old.client_order_id)
            else None
        )
        req = ReplaceOrderRequest(
            qty=None if qty is None else whole_qty(qty),
            limit_price=None if limit_price is None else float(limit_price),
            client_order_id=cid,
        )
        if cid is None:
            return to_order(
                await self._call(
                    self._client.replace_order_by_id, order_id, req, retry_transient=False
                )
            )
        return await self._submit_idempotent(
            req, cid, lambda r: self._client.replace_order_by_id(order_id, r)
        )

    async def clock(self) -> MarketClock:
        """Return the venue's clock."""
        c = await self._call(self._client.get_clock)
        return MarketClock(
            ts=c.timestamp, is_open=c.is_open, next_open=c.next_open, next_close=c.next_close
        )

    async def calendar(self, start: date, end: date) -> list[TradingDay]:
        """Return the sessions between two dates."""
        days = await self._call(self._client.get_calendar, GetCalendarRequest(start=start, end=end))
        # The SDK parses "HH:MM" into naive datetimes that mean New York time.
        return [
            TradingDay(d.date, d.open.replace(tzinfo=ET), d.close.replace(tzinfo=ET)) for d in days
        ]

    async def activities(self, since: datetime | None = None) -> list[Activity]:
        """Return fills and option events since ``since``, oldest first."""
        params: dict[str, Any] = {"direction": "asc", "page_size": self._page}
        if since is not None:
            params["after"] = since.astimezone(UTC).isoformat()
        out: list[Activity] = []
        while True:
            rows = await self._call(self._client.get, "/account/activities", dict(params))
            out.extend(to_activity(r) for r in rows or [])
            if not rows or len(rows) < self._page:
                return out
            params["page_token"] = rows[-1]["id"]

    async def option_contracts(
        self,
        underlying: str,
        *,
        expiration_gte: date | None = None,
        expiration_lte: date | None = None,
        page_size: int = 1000,
    ) -> list[dict[str, Any]]:
        """Active option contracts of ``underlying`` (all pages; the SDK returns only one).

        Each dict: symbol, underlying, expiry (date), type ("call"/"put"), strike (Decimal),
        size, open_interest (int or None), tradable.
        """
        contracts = await option_contract_pages(
            lambda req: self._call(self._client.get_option_contracts, req),
            underlying,
            expiration_gte=expiration_gte,
            expiration_lte=expiration_lte,
            page_size=page_size,
        )
        return [
            {
                "symbol": c.symbol,
                "underlying": c.underlying_symbol,
                "expiry": c.expiration_date,
                "type": enum_value(c.type),
                "strike": Decimal(str(c.strike_price)),
                "size": dec_or_none(c.size),
                "open_interest": int(c.open_interest) if c.open_interest else None,
                "tradable": c.tradable,
            }
            for c in contracts
        ]

    async def aclose(self) -> None:
        """Close the HTTP session (the shared worker pool stays for other adapters)."""
        self._client._session.close()
