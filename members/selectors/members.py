"""Finding members: the search box of the admin and the API's `q`.

What a query is read as, in order:

- contains "@": an email address (exact, case-insensitive);
- exactly four digits: the phone's last four digits;
- digits (with spaces, +, -, parentheses): a phone number, local numbers read
  in the shop's country (13800138000, +86 138 0013 8000, 0086...);
- anything else: a part of the name (case-insensitive);
- and in every case, when it has the shape of a member code (8 letters and
  digits, read leniently: i/l as 1, o as 0), the member code.

Each reading is an equality on a column indexed with the shop first, except
the name, served by a trigram index on PostgreSQL (see migration 0002).
"""

from __future__ import annotations

import contextlib
import re

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet

from members.codes import ALPHABET, LENGTH
from members.models import Member, MemberTag
from members.validation import normalize_phone
from shops.models import Shop
from shops.tenancy import get_current_shop

PHONE_LIKE = re.compile(r"^\+?[\d\s\-().]+$")
CODE_FIXES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def member_code_of(text: str) -> str | None:
    """`text` as a member code, if it could be one."""
    code = text.strip().upper().replace("-", "").replace(" ", "").translate(CODE_FIXES)
    if len(code) == LENGTH and set(code) <= set(ALPHABET):
        return code
    return None


def search_condition(*, shop: Shop, query: str) -> Q | None:
    """The WHERE condition for `query`, or None when there is nothing to search."""
    text = (query or "").strip()
    if not text:
        return None
    conditions = []
    code = member_code_of(text)
    if code:
        conditions.append(Q(member_code=code))
    if "@" in text:
        conditions.append(Q(email=text.lower()))
    elif PHONE_LIKE.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) == 4 and not text.startswith("+"):
            conditions.append(Q(phone_last4=digits))
        else:
            with contextlib.suppress(ValidationError):
                conditions.append(Q(phone=normalize_phone(text, region=shop.country)))
    else:
        conditions.append(Q(name__icontains=text[:100]))
    if not conditions:
        return Q(pk__in=[])
    combined = conditions[0]
    for condition in conditions[1:]:
        combined |= condition
    return combined


def search_members(
    *, query: str, shop: Shop | None = None, queryset: QuerySet | None = None
) -> QuerySet:
    """Members of the current shop matching `query` (all of them when blank)."""
    shop = shop or get_current_shop()
    members = queryset if queryset is not None else Member.objects.filter(shop=shop)
    condition = search_condition(shop=shop, query=query)
    return members if condition is None else members.filter(condition)


def with_tags(queryset: QuerySet) -> QuerySet:
    """`queryset` with each member's tags read in one extra query."""
    return queryset.prefetch_related(
        Prefetch(
            "member_tags",
            queryset=MemberTag.objects.select_related("tag").order_by("tag__name"),
        )
    )


def get_member(*, shop: Shop, pk) -> Member:
    return Member.objects.select_related("home_store", "referred_by").get(
        shop=shop, pk=pk
    )
