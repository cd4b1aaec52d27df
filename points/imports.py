"""Opening balances: members' points from the shop's previous system, imported
with the members file (members.services.imports, through its extra.py seam).

Two columns join the members import: "points" (a whole number above zero)
and "points_expire_on" (a date, today or later; empty: the shop's expiry
policy decides). The dry run shows them per row and reports bad cells by row
and column; the import writes, per chunk of rows and in its transaction, one
ledger credit per member (kind "earn", source "import" = opening balance) with
its lot, adds the points to the member's account and records a
`points.earned` event, as the ledger does for every credit. The entry's idempotency
key is "opening:<job id>:<member id>", so running the same import again (a
redelivered task, a retry after a failure) never credits a member twice.

The write is set-based: a few statements per chunk of 1000 rows (accounts
created if missing, locked and updated together; entries and lots inserted by
COPY on PostgreSQL, see members.services.imports.copying).
"""

from __future__ import annotations

import datetime
import re
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.models import ImportKind, Member
from members.services.imports.copying import insert_rows
from members.services.imports.extra import register_import_columns
from members.services.imports.fields import parse_datetime
from members.services.imports.reading import cell_text
from shops.models import OutboxEvent
from shops.services.events import outbox

from .events import POINTS_EARNED
from .models import EntryKind, EntrySource, PointsAccount, PointsEntry, PointsLot
from .services import rules
from .services.ledger import entry_payload

POINTS = "points"
EXPIRE_ON = "points_expire_on"
# A bigint holds more, but no shop has a member with more points than this;
# a larger number is a mistake in the file (a phone number in the wrong column).
MAX_OPENING_POINTS = 1_000_000_000

FIELDS = [
    (
        POINTS,
        gettext_lazy("Points (opening balance)"),
        (
            "points",
            "balance",
            "pointsbalance",
            "openingpoints",
            "openingbalance",
            "积分",
            "积分余额",
            "当前积分",
            "可用积分",
            "剩余积分",
            "会员积分",
        ),
    ),
    (
        EXPIRE_ON,
        gettext_lazy("Points expire on"),
        (
            "pointsexpireon",
            "pointsexpiry",
            "pointsexpire",
            "expireson",
            "expiry",
            "expirydate",
            "积分过期时间",
            "积分过期日期",
            "积分有效期",
            "过期时间",
            "过期日期",
            "有效期至",
        ),
    ),
]

_INTEGER = re.compile(r"^[+-]?\d+(\.0+)?$")


def opening_key(*, job_id, member_id) -> str:
    return f"opening:{job_id}:{member_id}"


# Reading cells -----------------------------------------------------------------


def parse_points(raw: Any) -> int:
    """A whole number of points above zero ("1,200", 1200 or 1200.0 in Excel)."""
    if isinstance(raw, bool):
        raw = cell_text(raw)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = cell_text(raw).replace(",", "").replace("\uff0c", "").strip()
    if isinstance(raw, int):
        number = raw
    elif _INTEGER.match(text):
        number = int(text.split(".")[0])
    else:
        raise ValidationError(
            _("“%(value)s” is not a whole number of points.")
            % {"value": cell_text(raw)}
        )
    if number <= 0:
        raise ValidationError(
            _("An opening balance is a number of points above zero, not %(value)s.")
            % {"value": number}
        )
    if number > MAX_OPENING_POINTS:
        raise ValidationError(_("This number of points is too large."))
    return number


def shop_today(shop) -> datetime.date:
    return timezone.now().astimezone(shop.zone).date()


def parse_expiry_date(raw: Any, *, shop) -> datetime.date:
    """The day the points expire (at its end), today or later in the shop."""
    day = parse_datetime(raw, zone=shop.zone).date()
    if day < shop_today(shop):
        raise ValidationError(
            _("The points would already have expired on %(date)s.")
            % {"date": day.isoformat()}
        )
    return day


def parse_cell(key: str, raw: Any, *, shop):
    if key == POINTS:
        return parse_points(raw)
    return parse_expiry_date(raw, shop=shop)


def clean_row(values: dict, *, shop) -> None:
    if EXPIRE_ON in values and POINTS not in values:
        raise ValidationError(
            {EXPIRE_ON: _("An expiry date needs a number of points on the row.")}
        )


# Expiry -------------------------------------------------------------------------


def end_of_day(day: datetime.date, zone) -> datetime.datetime:
    """The first instant after `day` in the shop's time zone: points that
    expire on a day can still be spent that day (as "the end of the following
    year" is the first instant of the year after it)."""
    return timezone.make_aware(
        datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()),
        zone,
    )


# Writing --------------------------------------------------------------------------


def write_opening_balances(
    *, shop, rows: list[tuple[int, dict]], job_id, acting_user=None, actor_label=""
) -> int:
    """Credit each member of `rows` [(member id, {"points", "points_expire_on"})]
    their opening balance, once per import; returns how many were credited.

    Runs inside the import chunk's transaction. Accounts are created when
    missing and locked (in id order, as every ledger write locks them) before
    their figures change, so a redemption at the counter meanwhile waits.
    """
    wanted: dict[int, dict] = {}
    for member_id, values in rows:
        if values.get(POINTS):
            wanted.setdefault(member_id, values)  # one credit per member and import
    if not wanted:
        return 0
    keys = {m: opening_key(job_id=job_id, member_id=m) for m in wanted}
    if not (wanted := _not_yet_credited(shop, wanted, keys)):
        return 0
    now = timezone.now()
    zone = shop.zone
    default_expiry = rules.expiry_for(
        rules.policy_for(shop, cached=False), shop=shop, at=now
    )

    _create_missing_accounts(shop, sorted(wanted), now=now)
    accounts = list(
        PointsAccount.objects.select_for_update()
        .filter(shop=shop, member_id__in=list(wanted))
        .order_by("id")
    )
    # Checked again under the locks: a run of the same import that held them
    # has committed its credits by now.
    if not (wanted := _not_yet_credited(shop, wanted, keys)):
        return 0
    accounts = [a for a in accounts if a.member_id in wanted]
    # A negative balance (a refund under "go negative") is paid back first:
    # the lot keeps what is left of its points.
    lot_remaining: dict[int, int] = {}
    for account in accounts:
        points = wanted[account.member_id][POINTS]
        lot_remaining[account.pk] = points - min(points, max(0, -account.balance))
        account.balance += points
        account.lifetime_earned += points
        account.updated_at = now
    _refresh_pending(shop, [a for a in accounts if a.pending > 0], now=now)
    _save_accounts(shop, accounts, now=now)

    reason = _("Opening balance (import #%(job)s)") % {"job": job_id}
    actor_id = getattr(acting_user, "pk", None)
    entries = [
        {
            "shop_id": shop.pk,
            "account_id": account.pk,
            "kind": EntryKind.EARN,
            "points": wanted[account.member_id][POINTS],
            "total_after": account.balance,
            "source": EntrySource.IMPORT,
            "reason": reason,
            "reference": f"import:{job_id}",
            "idempotency_key": keys[account.member_id],
            "acting_user_id": actor_id,
            "actor_label": str(actor_label)[:100],
            "created_at": now,
        }
        for account in accounts
    ]
    entry_ids = insert_rows(PointsEntry, entries, with_ids=True)
    lots = []
    for account, entry_id in zip(accounts, entry_ids, strict=True):
        expire_on = wanted[account.member_id].get(EXPIRE_ON)
        lots.append(
            {
                "shop_id": shop.pk,
                "account_id": account.pk,
                "entry_id": entry_id,
                "points": wanted[account.member_id][POINTS],
                "remaining": lot_remaining[account.pk],
                "expires_at": end_of_day(expire_on, zone)
                if expire_on
                else default_expiry,
                "available_at": now,
                "created_at": now,
            }
        )
    insert_rows(PointsLot, lots)
    _emit_earned(shop, accounts, entries, entry_ids, now=now)
    return len(entries)


def _create_missing_accounts(shop, member_ids: list[int], *, now) -> None:
    """Accounts of these members, created empty where missing (one statement;
    a concurrent first write waits on the unique key, as in the ledger)."""
    if connection.vendor != "postgresql":
        PointsAccount.objects.bulk_create(
            [PointsAccount(shop=shop, member_id=m) for m in member_ids],
            ignore_conflicts=True,
            batch_size=1000,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO points_pointsaccount (shop_id, member_id, balance, pending, "
            "lifetime_earned, redeemed, expired, updated_at) "
            "SELECT %s, m, 0, 0, 0, 0, 0, %s FROM unnest(%s::bigint[]) AS m "
            "ON CONFLICT (shop_id, member_id) DO NOTHING",
            [shop.pk, now, member_ids],
        )


def _save_accounts(shop, accounts: list[PointsAccount], *, now) -> None:
    """Write the locked accounts' new figures: on PostgreSQL one UPDATE from
    arrays (Django's bulk_update builds a CASE per row and field, which cost
    seconds per thousand rows); it names the shop itself (raw-SQL rule)."""
    if connection.vendor != "postgresql":
        PointsAccount.objects.bulk_update(
            accounts,
            ["balance", "pending", "lifetime_earned", "updated_at"],
            batch_size=1000,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE points_pointsaccount AS a SET balance = v.balance, "
            "pending = v.pending, lifetime_earned = v.lifetime_earned, "
            "updated_at = %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
            "AS v(id, balance, pending, lifetime_earned) "
            "WHERE a.shop_id = %s AND a.id = v.id",
            [
                now,
                [a.pk for a in accounts],
                [a.balance for a in accounts],
                [a.pending for a in accounts],
                [a.lifetime_earned for a in accounts],
                shop.pk,
            ],
        )


def _not_yet_credited(shop, wanted: dict, keys: dict) -> dict:
    done = set(
        PointsEntry.objects.filter(
            shop=shop, idempotency_key__in=[keys[m] for m in wanted]
        ).values_list("idempotency_key", flat=True)
    )
    return {m: v for m, v in wanted.items() if keys[m] not in done}


def _emit_earned(shop, accounts, entries, entry_ids, *, now) -> None:
    """One `points.earned` per credit, as the ledger sends for every credit
    (so an integrator mirroring balances stays right), written in bulk."""
    codes = dict(
        Member.objects.filter(shop=shop, pk__in=[a.member_id for a in accounts])
        .values_list("pk", "member_code")
        .order_by()
    )
    payloads = []
    for account, row, entry_id in zip(accounts, entries, entry_ids, strict=True):
        entry = SimpleNamespace(**row, pk=entry_id, purchase_id=None)
        member = SimpleNamespace(
            pk=account.member_id, member_code=codes.get(account.member_id, "")
        )
        payloads.append(entry_payload(entry, account=account, member=member))
    # As the members import writes its events: COPY, then one relay run.
    insert_rows(
        OutboxEvent,
        [
            {
                "shop_id": shop.pk,
                "topic": POINTS_EARNED,
                "payload": p,
                "created_at": now,
            }
            for p in payloads
        ],
    )
    transaction.on_commit(outbox.kick_relay, robust=True)


def _refresh_pending(shop, accounts: list[PointsAccount], *, now) -> None:
    """Bring `pending` of the (few) accounts with points in a return window up
    to date, as every write to an account does: one query for all of them."""
    if not accounts:
        return
    still = dict(
        PointsLot.objects.filter(
            shop=shop,
            account_id__in=[a.pk for a in accounts],
            remaining__gt=0,
            available_at__gt=now,
        )
        .values("account_id")
        .annotate(total=Sum("remaining"))
        .values_list("account_id", "total")
    )
    for account in accounts:
        account.pending = still.get(account.pk, 0)


def _write(*, shop, rows, job_id, acting_user, actor_label) -> None:
    write_opening_balances(
        shop=shop,
        rows=rows,
        job_id=job_id,
        acting_user=acting_user,
        actor_label=actor_label,
    )


def register() -> None:
    """Add the opening-balance columns to the members import (PointsConfig.ready)."""
    register_import_columns(
        ImportKind.MEMBERS,
        fields=FIELDS,
        parse=parse_cell,
        clean=clean_row,
        write=_write,
    )
