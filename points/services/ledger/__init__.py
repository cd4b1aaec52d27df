"""The points ledger: every change of a balance goes through this module.

Figures (see points.models.ledger for the invariants the tests check):
- `account.balance` is the sum of the account's entries (spendable + pending);
- `account.pending` is the part of it that sits in lots still inside the return
  window (`available_at` > now). It is refreshed on every write to the account
  and by `release_pending` (beat), so `spendable = balance - pending`;
- every credit makes one lot; every debit consumes open lots, oldest expiry
  first (never-expiring last), then oldest lot, and records which
  (`LotConsumption`);
- the balance goes below zero only by a debit with `allow_negative` (a
  refund's reversal under the shop's "go negative" policy); the next credits
  pay that debt before they form lots with remaining points.

Every write locks the account row (`SELECT ... FOR UPDATE`) and writes the
entry, its lots and the account in the same transaction, so two writes to one
account run one after the other and never overspend. A write with an
`idempotency_key` is done once per shop: a retry returns the first entry (with
`entry.replayed = True`); the same key with another member, kind or number of
points is refused (`IdempotencyConflict`).
"""

from .accounts import (
    _lock_account,
    _refresh_pending,
    _save_account,
    account_for,
    release_pending,
)
from .credit import POLICY_DEFAULT, credit
from .debit import _open_lots, _spending_order, adjust, debit, takeable
from .entries import TOPICS, _emit, entry_payload
from .errors import IdempotencyConflict, InsufficientPoints, PointsError
from .expiring import (
    by_last_day,
    expiring_soon,
    expiring_soon_total,
    members_with_points_expiring,
)
from .restore import restore_consumptions

__all__ = [
    "POLICY_DEFAULT",
    "TOPICS",
    "IdempotencyConflict",
    "InsufficientPoints",
    "PointsError",
    "_emit",
    "_lock_account",
    "_open_lots",
    "_refresh_pending",
    "_save_account",
    "_spending_order",
    "account_for",
    "adjust",
    "by_last_day",
    "credit",
    "debit",
    "entry_payload",
    "expiring_soon",
    "expiring_soon_total",
    "members_with_points_expiring",
    "release_pending",
    "restore_consumptions",
    "takeable",
]
