"""The member's figures and the purchase events: one UPDATE ... RETURNING each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Case, F, OuterRef, Subquery, When
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from members.events import PURCHASE_COMPLETED
from members.models import (
    Member,
    Purchase,
)
from members.models.purchase import COUNTED_STATUSES
from shops import rawsql
from shops.services.events import emit_event
from shops.services.events.outbox import relay_after_commit

from .checks import CENT, FIGURES, MemberNotFound


def _update_member(member: Member, **values) -> None:
    """ONE atomic UPDATE of the member's row; its new figures land in `member`.

    Compiled by the ORM (so F()/Least/Greatest and the shop scope apply) with
    RETURNING appended: the caller gets the committed-to figures without a
    second round trip. PostgreSQL and SQLite >= 3.35 both support it.
    """
    query = Member.objects.filter(pk=member.pk).query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(connection=connection).as_sql()
    quote = connection.ops.quote_name
    sql = f"{sql} RETURNING {', '.join(quote(name) for name in FIGURES)}"
    _run_returning(member, sql, params)


def _run_returning(member: Member, sql: str, params, *, prepared=False) -> None:
    with connection.cursor() as cursor:
        if prepared:  # a statement of ours (the ORM's are not prepared)
            rawsql.execute(cursor, sql, params)
        else:
            cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise MemberNotFound()
    for name, raw in zip(FIGURES, row, strict=True):
        value = Member._meta.get_field(name).to_python(raw)
        if isinstance(value, datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        elif isinstance(value, Decimal):
            value = value.quantize(CENT)
        setattr(member, name, value)


_COUNT_SQL = (
    'UPDATE "members_member" SET "total_spent" = "total_spent" + %s, '
    '"order_count" = "order_count" + 1, '
    '"first_purchase_at" = LEAST(COALESCE("first_purchase_at", %s), %s), '
    '"last_purchase_at" = GREATEST(COALESCE("last_purchase_at", %s), %s) '
    'WHERE "shop_id" = %s AND "id" = %s '
    'RETURNING "total_spent", "order_count", "first_purchase_at", "last_purchase_at"'
)
# SQLite spells LEAST/GREATEST as the many-argument MIN/MAX, and keeps
# decimals exact only through NUMERIC.
_COUNT_SQL_SQLITE = (
    _COUNT_SQL.replace("LEAST(", "MIN(")
    .replace("GREATEST(", "MAX(")
    .replace('"total_spent" + %s', 'CAST("total_spent" + %s AS NUMERIC)')
)


# PostgreSQL: the event in the same statement, its member figures the UPDATE's
# (one round trip fewer on every sale). No row: no such member, no event.
_COUNT_AND_EMIT_SQL = (
    f"WITH m AS ({_COUNT_SQL}), "  # noqa: S608 (constants; values are parameters)
    "o AS (INSERT INTO shops_outboxevent (shop_id, topic, payload, created_at) "
    "SELECT %s, %s, jsonb_set(jsonb_set(%s::jsonb, '{member,total_spent}', "
    "to_jsonb(m.total_spent::text)), '{member,order_count}', "
    "to_jsonb(m.order_count)), %s FROM m) "
    'SELECT "total_spent", "order_count", "first_purchase_at", "last_purchase_at" '
    "FROM m"
)


def _count_purchase(purchase: Purchase) -> None:
    """The purchase now counts: the member's figures and `purchase.completed`."""
    # Every completed purchase runs this, so it is written by hand (compiling
    # the ORM update costs more than running it). Raw SQL is outside the
    # tenancy guard: the purchase's shop is named in the WHERE clause.
    at = connection.ops.adapt_datetimefield_value(purchase.occurred_at)
    member = purchase.member
    params = [purchase.paid_amount, at, at, at, at, purchase.shop_id, member.pk]
    if connection.vendor != "postgresql":
        _run_returning(member, _COUNT_SQL_SQLITE, params, prepared=True)
        emit_event(
            shop=purchase.shop, topic=PURCHASE_COMPLETED, payload=_payload(purchase)
        )
        return
    params += [
        purchase.shop_id,
        PURCHASE_COMPLETED,
        json.dumps(_payload(purchase)),
        connection.ops.adapt_datetimefield_value(timezone.now()),
    ]
    _run_returning(member, _COUNT_AND_EMIT_SQL, params, prepared=True)
    relay_after_commit()


def _uncount_refund(purchase: Purchase, *, amount: Decimal, fully: bool) -> None:
    values = {"total_spent": F("total_spent") - amount}
    if fully:
        # No longer an order. First/last purchase are looked up again only
        # when this purchase was the first or the last one.
        values["order_count"] = F("order_count") - 1
        counted = Purchase.objects.filter(
            member=OuterRef("pk"), status__in=COUNTED_STATUSES
        ).values("occurred_at")
        at = purchase.occurred_at
        values["first_purchase_at"] = Case(
            When(
                first_purchase_at=at,
                then=Subquery(counted.order_by("occurred_at")[:1]),
            ),
            default=F("first_purchase_at"),
        )
        values["last_purchase_at"] = Case(
            When(
                last_purchase_at=at,
                then=Subquery(counted.order_by("-occurred_at")[:1]),
            ),
            default=F("last_purchase_at"),
        )
    _update_member(purchase.member, **values)


def _payload(purchase: Purchase) -> dict:
    """`purchase.completed`'s payload (the member's figures as `member` holds
    them: on PostgreSQL the statement writing the event puts in the new ones)."""
    member = purchase.member
    return {
        "purchase": {
            "id": purchase.pk,
            "external_order_id": purchase.external_order_id,
            "status": purchase.status,
            "amount": f"{purchase.amount:.2f}",
            "discount": f"{purchase.discount:.2f}",
            "paid_amount": f"{purchase.paid_amount:.2f}",
            "refunded_amount": f"{purchase.refunded_amount:.2f}",
            "currency": purchase.currency,
            "channel": purchase.channel,
            "store_id": purchase.store_id,
            "occurred_at": purchase.occurred_at.isoformat(),
        },
        "member": {
            "id": member.pk,
            "member_code": member.member_code,
            "external_id": member.external_id,
            "total_spent": f"{member.total_spent:.2f}",
            "order_count": member.order_count,
        },
    }
