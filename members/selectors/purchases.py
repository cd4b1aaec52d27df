"""Reads about purchases: the member a purchase is for, staff's store-limited
lists, a member's latest purchases. Every read runs in the current shop's scope."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _

from members.models import Member, Purchase, Refund
from members.services.purchases import MemberNotFound
from shops.db import MAX_ID
from shops.models import Store
from shops.rawsql import columns_of, execute, fetch_one, from_row
from shops.tenancy import get_current_shop

MEMBER_KEYS = ("member_id", "member_code", "member_external_id")


def _member_key(
    *,
    member_id: int | None = None,
    member_code: str | None = None,
    member_external_id: str | None = None,
) -> tuple[str, object]:
    """(column, value) naming the member; `MemberNotFound` for a value no
    member can have (checked without a query)."""
    if member_id is not None:
        if isinstance(member_id, bool) or not isinstance(member_id, int):
            raise MemberNotFound()
        if not 0 < member_id <= MAX_ID:
            raise MemberNotFound()
        return ("id", member_id)
    if member_code is not None:
        code = member_code.strip().upper() if isinstance(member_code, str) else ""
        if not code or len(code) > 16 or "\x00" in code:
            raise MemberNotFound()
        return ("member_code", code)
    if member_external_id is not None:
        given = member_external_id if isinstance(member_external_id, str) else ""
        if not given or len(given) > 64 or "\x00" in given:
            raise MemberNotFound()
        return ("external_id", given)
    raise ValidationError(
        {"member_id": _("Give member_id, member_code or member_external_id.")}
    )


def member_for_purchase(**member_keys) -> Member:
    """The member named by exactly one of `member_id`, `member_code` or
    `member_external_id`.

    One indexed query (each key is unique in the shop); `MemberNotFound` (404)
    when none matches, so another shop's member looks like a missing one.
    """
    return _member_by(*_member_key(**member_keys))


def _member_by(column: str, value) -> Member:
    # Raw SQL (the POS's hot path, see shops.rawsql) is outside the tenancy
    # guard: the current shop's id is named here explicitly.
    member = fetch_one(
        Member, f"shop_id = %s AND {column} = %s", [get_current_shop().pk, value]
    )
    if member is None:
        raise MemberNotFound()
    return member


def _store_key(*, store_id=None, store_code=None):
    """(field, column, value) naming the store, (field, None, None) for a
    value no store can have, or None when neither is given."""
    if store_id is not None:
        if isinstance(store_id, bool) or not isinstance(store_id, int):
            return ("store_id", None, None)
        if not 0 < store_id <= MAX_ID:
            return ("store_id", None, None)
        return ("store_id", "id", store_id)
    if store_code is not None:
        ok = isinstance(store_code, str) and len(store_code) <= 32
        if not ok or "\x00" in store_code:
            return ("store_code", None, None)
        return ("store_code", "code", store_code)
    return None


def store_by(*, store_id=None, store_code=None) -> Store | None:
    """The shop's store by id or code; None when neither is given."""
    key = _store_key(store_id=store_id, store_code=store_code)
    if key is None:
        return None
    field, column, value = key
    store = None
    if column is not None:
        # Raw SQL (hot path): the current shop's id is named explicitly.
        store = fetch_one(
            Store, f"shop_id = %s AND {column} = %s", [get_current_shop().pk, value]
        )
    return store or _no_store(field)


def member_and_store_for_purchase(
    *, store_id=None, store_code=None, **member_keys
) -> tuple[Member, Store | None]:
    """`member_for_purchase` and `store_by` in one round trip (a till names
    both on every sale): the member's row with the store's joined, or
    `MemberNotFound` first, as the two reads one after the other answer."""
    column, value = _member_key(**member_keys)
    key = _store_key(store_id=store_id, store_code=store_code)
    if key is None or key[1] is None:
        member = _member_by(column, value)
        return member, store_by(store_id=store_id, store_code=store_code)
    field, store_column, store_value = key
    sql = _MEMBER_AND_STORE.get((column, store_column))
    if sql is None:
        # Column names from this module, values always parameters; both
        # tables filtered by the current shop (raw SQL, outside the guard).
        sql = (
            f"SELECT {columns_of(Member, 'm')}, {columns_of(Store, 's')} "  # noqa: S608
            f"FROM {Member._meta.db_table} m LEFT JOIN {Store._meta.db_table} s "
            f"ON s.shop_id = m.shop_id AND s.{store_column} = %s "
            f"WHERE m.shop_id = %s AND m.{column} = %s LIMIT 1"
        )
        _MEMBER_AND_STORE[(column, store_column)] = sql
    with connection.cursor() as cursor:
        execute(cursor, sql, [store_value, get_current_shop().pk, value])
        row = cursor.fetchone()
    if row is None:
        raise MemberNotFound()
    width = len(Member._meta.concrete_fields)
    member = from_row(Member, row[:width])
    if row[width] is None:
        _no_store(field)
    return member, from_row(Store, row[width:])


_MEMBER_AND_STORE: dict[tuple[str, str], str] = {}


def _no_store(field: str):
    raise ValidationError({field: _("No such store in this shop.")})


def allowed_store_ids(membership) -> list[int] | None:
    """The stores a staff member is limited to, or None for every store."""
    if membership is None:
        return None
    ids = list(membership.stores.values_list("pk", flat=True))
    return ids or None


def purchases_visible_to(queryset: QuerySet, *, store_ids: list[int] | None):
    """Limit purchases to some stores (a clerk's); None leaves them all."""
    if store_ids is None:
        return queryset
    return queryset.filter(store_id__in=store_ids)


def purchase_with_details(queryset: QuerySet) -> QuerySet:
    """Member and store joined; lines and refunds (oldest first) prefetched."""
    return queryset.select_related("member", "store").prefetch_related(
        "lines", Prefetch("refunds", queryset=Refund.objects.order_by("id"))
    )


def latest_purchases(*, member: Member, store_ids=None, limit: int = 10) -> list:
    purchases = Purchase.objects.filter(member=member).select_related("store")
    return list(purchases_visible_to(purchases, store_ids=store_ids)[:limit])


def refunds_of(purchase: Purchase) -> list[Refund]:
    return list(Refund.objects.filter(purchase=purchase).order_by("id"))


def member_at_counter(*, shop, text: str) -> Member | None:
    """The member a clerk means by a member code, a phone number or, when only
    one member matches, the phone's last four digits. None when unclear."""
    from members.validation import normalize_phone

    given = (text or "").strip()
    if not given or "\x00" in given or len(given) > 40:
        return None
    by_code = Member.objects.filter(member_code=given.upper()).first()
    if by_code is not None:
        return by_code
    if given.isdigit() and len(given) == 4:
        matches = list(Member.objects.filter(phone_last4=given)[:2])
        return matches[0] if len(matches) == 1 else None
    try:
        phone = normalize_phone(given, region=shop.country)
    except ValidationError:
        return None
    return Member.objects.filter(phone=phone).first()
