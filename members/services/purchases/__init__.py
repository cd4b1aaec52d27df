"""Purchases: record, complete, refund, cancel; the member's figures move with them.

A purchase counts (member figures, and later tiers, points, RFM) once it is
completed. The member's `total_spent` is the sum of `paid_amount -
refunded_amount` over counted and refunded purchases, `order_count` the
number of completed or partially refunded ones, `first_purchase_at` /
`last_purchase_at` their earliest and latest `occurred_at`. Each change is ONE
atomic UPDATE of the member row with F()/Least/Greatest expressions, in the
transaction that changes the purchase: concurrent purchases of one member never
lose an increment.

The statements of a completed `record_purchase` (the API's hot path):

    INSERT purchase ... ON CONFLICT (shop, external_order_id) DO NOTHING
                                                 -- idempotent by order number
    INSERT purchase lines (one bulk INSERT; none when there are no lines)
    UPDATE member SET total_spent = total_spent + paid, order_count + 1,
        first = LEAST(COALESCE(first, t), t), last = GREATEST(...)
        WHERE shop AND id RETURNING the four figures
    INSERT outbox event (purchase.completed)

(plus the member and store look-up by the caller, BEGIN and COMMIT).

Locks: a status change locks the purchase row (`select_for_update`), and then
the member row by its UPDATE: always purchase first, then member.

Transactions: a caller may wrap any of these with more work in ONE
transaction. `record_purchase` runs in `atomic(savepoint=False)`, so the hot
path pays no savepoint round trip when wrapped: everything it refuses is
refused before its block starts or after it ends (a known order number
inserts nothing, and is compared with the first purchase outside the block).
Its `then=` callable runs inside that block after a new purchase is written:
how `points.services.settlement` adds the tier and the points.
complete / refund / cancel check the state under the row lock, so they use a
savepoint when wrapped: a refusal leaves the caller's transaction usable.
"""

from .checks import (
    MemberErased,
    MemberNotFound,
    OrderExists,
    PurchaseStateError,
    RefundTooLarge,
    money,
)
from .recording import cancel_purchase, complete_purchase, record_purchase
from .refunds import refund_purchase

__all__ = [
    "MemberErased",
    "MemberNotFound",
    "OrderExists",
    "PurchaseStateError",
    "RefundTooLarge",
    "cancel_purchase",
    "complete_purchase",
    "money",
    "record_purchase",
    "refund_purchase",
]
