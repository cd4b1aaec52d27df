"""Tagging many members at once: a few set-based statements, whatever the count.

Raw SQL is not covered by the tenancy guard, so every statement names the shop.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import (
    MemberTag,
    Tag,
    TagSource,
)
from shops.models import Shop

from .core import TAG_ADDED, TAG_REMOVED, _same_shop

# Many members, set-based -----------------------------------------------------


def _ids_sql(members: QuerySet, shop: Shop) -> tuple[str, tuple]:
    """The SQL selecting the ids of `members` (of `shop` only), as `mid`."""
    ids = members.filter(shop=shop).order_by().values(mid=F("pk"))
    sql, params = ids.query.sql_with_params()
    return sql, tuple(params)


def _json_param() -> str:
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


def _db_time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _insert_rows(
    *,
    shop: Shop,
    tag: Tag,
    ids_sql: str,
    ids_params: tuple,
    source: str,
    now: datetime,
    promote: bool,
) -> int:
    """INSERT ... SELECT the members' rows of `tag`; returns rows written.

    With `promote`, an existing rule-given row becomes hand-given (and counts).
    """
    conflict = "DO NOTHING"
    if promote:
        conflict = (
            "(shop_id, member_id, tag_id) DO UPDATE SET source = excluded.source, "
            "added_at = excluded.added_at "
            "WHERE members_membertag.source <> excluded.source"
        )
    # "WHERE 1 = 1" lets SQLite parse ON CONFLICT after a SELECT. The
    # fragments are compiled by Django or fixed here; values are parameters.
    sql = (
        "INSERT INTO members_membertag "  # noqa: S608
        "(shop_id, member_id, tag_id, source, added_at) "
        f"SELECT %s, chosen.mid, %s, %s, %s FROM ({ids_sql}) chosen WHERE 1 = 1 "
        f"ON CONFLICT {conflict}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (shop.pk, tag.pk, source, _db_time(now), *ids_params))
        return max(cursor.rowcount, 0)


def _audit_rows(
    *,
    shop: Shop,
    where_sql: str,
    where_params: tuple,
    action: str,
    changes: dict,
    acting_user,
    now: datetime,
) -> None:
    """One timeline entry per selected member_tags row, in one statement."""
    # `where_sql` comes from this module (and Django's compiler), never input.
    sql = (
        "INSERT INTO members_memberchange "  # noqa: S608
        "(shop_id, member_id, at, actor_id, actor_label, action, changes) "
        f"SELECT shop_id, member_id, %s, %s, '', %s, {_json_param()} "
        f"FROM members_membertag WHERE shop_id = %s AND {where_sql}"
    )
    params = (
        _db_time(now),
        getattr(acting_user, "pk", None),
        action,
        json.dumps(changes),
        shop.pk,
        *where_params,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@transaction.atomic
def add_tag(*, shop: Shop, members: QuerySet, tag: Tag, acting_user=None) -> int:
    """Tag every member of `members` by hand; returns how many got it now."""
    _same_shop(shop, tag)
    now = timezone.now()
    ids_sql, ids_params = _ids_sql(members, shop)
    added = _insert_rows(
        shop=shop,
        tag=tag,
        ids_sql=ids_sql,
        ids_params=ids_params,
        source=TagSource.MANUAL,
        now=now,
        promote=True,
    )
    if added:
        # The rows just written carry this exact time.
        _audit_rows(
            shop=shop,
            where_sql="tag_id = %s AND source = %s AND added_at = %s",
            where_params=(tag.pk, TagSource.MANUAL, _db_time(now)),
            action=TAG_ADDED,
            changes={"tags": [None, tag.name]},
            acting_user=acting_user,
            now=now,
        )
    return added


@transaction.atomic
def remove_tag(*, shop: Shop, members: QuerySet, tag: Tag, acting_user=None) -> int:
    """Take `tag` off every member of `members`; returns how many had it."""
    _same_shop(shop, tag)
    now = timezone.now()
    ids_sql, ids_params = _ids_sql(members, shop)
    _audit_rows(
        shop=shop,
        where_sql=f"tag_id = %s AND member_id IN ({ids_sql})",
        where_params=(tag.pk, *ids_params),
        action=TAG_REMOVED,
        changes={"tags": [tag.name, None]},
        acting_user=acting_user,
        now=now,
    )
    deleted, _rows = MemberTag.objects.filter(
        shop=shop, tag=tag, member__in=members.filter(shop=shop).order_by().values("pk")
    ).delete()
    return deleted


@transaction.atomic
def move_tag(
    *, shop: Shop, members: QuerySet, from_tag: Tag, to_tag: Tag, acting_user=None
) -> int:
    """Members of `members` tagged `from_tag` get `to_tag` instead.

    Returns how many members were moved (those that had `from_tag`).
    """
    _same_shop(shop, from_tag, to_tag)
    if from_tag.pk == to_tag.pk:
        raise ValidationError({"to_tag": _("Choose two different tags.")})
    holders = members.filter(
        shop=shop,
        pk__in=MemberTag.objects.filter(shop=shop, tag=from_tag).values("member_id"),
    )
    add_tag(shop=shop, members=holders, tag=to_tag, acting_user=acting_user)
    return remove_tag(shop=shop, members=holders, tag=from_tag, acting_user=acting_user)
