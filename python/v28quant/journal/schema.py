"""The journal's tables (versioned migrations) and the order-status vocabulary it stores."""

from __future__ import annotations

from v28quant.broker.base import TERMINAL_STATUSES as _VENUE_TERMINAL

#: Journaled, not yet known to have left (``record_order_intent``).
INTENT_STATUS = "intent"
#: Sent, but the venue's answer is unknown (timeout, 5xx, unreadable reply): a look-up by client
#: order id among open and closed orders settles it. Never read as a refusal.
UNKNOWN_STATUS = "unknown"
#: A look-up found no such order at the venue: it never arrived. Final unless the venue later
#: shows it (reconcile treats that as a difference).
NOT_SENT_STATUS = "not_sent"
#: Refused before sending by the execution service (ownership, reservations); reason journaled.
REFUSED_STATUS = "refused"

#: Statuses after which no more updates are expected: the venue's own, plus the local ones.
FINAL_STATUSES = frozenset({s.value for s in _VENUE_TERMINAL} | {NOT_SENT_STATUS, REFUSED_STATUS})
#: Statuses stamped by the local clock, which any venue answer supersedes whatever its time.
LOCAL_STATUSES = frozenset({INTENT_STATUS, UNKNOWN_STATUS, NOT_SENT_STATUS, REFUSED_STATUS})

#: The engine of reconcile's own decisions: a stock split it took, the operator's acceptance.
RECONCILE_ENGINE = "reconcile"
#: The decision of a stock split that re-based a position; its reasoning's ``ratio`` ("4",
#: "3/2", "1/10") is new shares per old share.
SPLIT_ACTION = "split"
#: The decision of positions the operator accepted (``v28quant accept-positions``): its
#: reasoning's ``positions`` name each one's ``symbol`` and its ``journal``, ``expected`` (the
#: journal's, moved by the new activities) and ``broker`` quantities.
POSITIONS_ACCEPTED_ACTION = "positions_accepted"

# Each entry migrates the schema from version i to i + 1; never edit a released entry, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL, model TEXT NOT NULL, symbol TEXT NOT NULL,
        value REAL NOT NULL, confidence REAL NOT NULL, reasoning TEXT NOT NULL);
    CREATE INDEX signals_ts ON signals(ts);
    CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY, ts TEXT NOT NULL, engine TEXT NOT NULL,
        strategy TEXT NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
        reasoning TEXT NOT NULL);
    CREATE INDEX decisions_ts ON decisions(ts);
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY, engine TEXT, strategy TEXT, decision_id TEXT,
        request TEXT, intent_ts TEXT, broker_order_id TEXT, status TEXT NOT NULL,
        filled_qty TEXT, filled_avg_price TEXT, updated_ts TEXT NOT NULL);
    CREATE INDEX orders_status ON orders(status);
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, client_order_id TEXT NOT NULL,
        broker_order_id TEXT, status TEXT NOT NULL, filled_qty TEXT, filled_avg_price TEXT,
        raw TEXT NOT NULL, ts TEXT NOT NULL);
    CREATE INDEX order_events_cid ON order_events(client_order_id);
    CREATE TABLE fills (
        fill_id TEXT PRIMARY KEY, client_order_id TEXT, symbol TEXT NOT NULL,
        qty TEXT NOT NULL, price TEXT NOT NULL, side TEXT NOT NULL, ts TEXT NOT NULL);
    CREATE INDEX fills_ts ON fills(ts);
    CREATE TABLE position_snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL);
    CREATE TABLE positions (
        snapshot_id INTEGER NOT NULL REFERENCES position_snapshots(id),
        symbol TEXT NOT NULL, qty TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, symbol));
    CREATE TABLE activities (
        activity_id TEXT PRIMARY KEY, activity_type TEXT NOT NULL, symbol TEXT,
        qty TEXT, price TEXT, ts TEXT NOT NULL, raw TEXT NOT NULL);
    CREATE TABLE model_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL,
        started TEXT NOT NULL, finished TEXT NOT NULL, params TEXT NOT NULL,
        metrics TEXT NOT NULL);
    CREATE TABLE reconciles (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, ok INTEGER NOT NULL,
        differences TEXT NOT NULL);
    """,
    # 2: the request's hash beside each intent (one key, one request), the last reason an
    # order changed status, what it spends (shares of a symbol, or cash), and reservations of
    # shares or cash by an owner.
    """
    ALTER TABLE orders ADD COLUMN request_hash TEXT;
    ALTER TABLE orders ADD COLUMN reason TEXT;
    ALTER TABLE orders ADD COLUMN spend_kind TEXT;
    ALTER TABLE orders ADD COLUMN spend_symbol TEXT;
    ALTER TABLE orders ADD COLUMN spend_amount TEXT;
    CREATE INDEX orders_broker_id ON orders(broker_order_id);
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        engine TEXT NOT NULL, strategy TEXT NOT NULL, decision_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('shares', 'cash')), symbol TEXT,
        amount TEXT NOT NULL, client_order_id TEXT, created_ts TEXT NOT NULL,
        released_ts TEXT, release_reason TEXT);
    CREATE INDEX reservations_active ON reservations(released_ts, kind, symbol);
    """,
    # 3: the aggregator's combined view per symbol, and indexes for the why-query's lookups
    """
    CREATE TABLE aggregates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL, data_ts TEXT, symbol TEXT NOT NULL, value REAL NOT NULL,
        confidence REAL NOT NULL, tradable INTEGER NOT NULL, regime TEXT NOT NULL,
        contributions TEXT NOT NULL, reasoning TEXT NOT NULL);
    CREATE INDEX aggregates_symbol_ts ON aggregates(symbol, ts);
    CREATE INDEX signals_symbol_ts ON signals(symbol, ts);
    CREATE INDEX decisions_symbol_ts ON decisions(symbol, ts);
    """,
    # 4: one model's signals over a span (a year of the options engine's IV readings), and
    # one engine's decisions of some actions (the kill switch's, among a mark every cycle)
    """
    CREATE INDEX signals_model_ts ON signals(model, ts);
    CREATE INDEX decisions_engine_action ON decisions(engine, action, ts);
    """,
    # 5: the outbox of Discord notices: each one as queued, then posted, or given up with why;
    # a start finds what an earlier process left unsent through the partial index
    """
    CREATE TABLE notices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queued_ts TEXT NOT NULL, content TEXT NOT NULL,
        posted_ts TEXT, given_up_ts TEXT, given_up_reason TEXT);
    CREATE INDEX notices_unsent ON notices(id) WHERE posted_ts IS NULL AND given_up_ts IS NULL;
    """,
    # 6: the time of the cycle that journaled each signal (its ts is its data's: an equity
    # signal's daily bar closed the session before), so a day's roll-up counts the signals
    # its cycles made; NULL for a signal journaled outside a cycle (its ts then places it)
    """
    ALTER TABLE signals ADD COLUMN cycle_ts TEXT;
    CREATE INDEX signals_cycle_ts ON signals(COALESCE(cycle_ts, ts));
    """,
)
