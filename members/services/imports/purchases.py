"""Importing historical purchases, then recomputing the members' figures.

A purchase already in the shop (same order number), or repeated in the file,
is skipped. Historical purchases send no `purchase.completed` events and earn
no points: they are the past, brought in, not new business happening now.
The figures of every member touched by a chunk (total spent, orders, first and
last purchase) are recomputed from their purchases in one UPDATE.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from members.models import Member, Purchase, PurchaseChannel, PurchaseStatus
from members.models.purchase import COUNTED_STATUSES
from members.validation import normalize_phone
from shops.models import Store

from .base import ChunkResult, RowImporter
from .fields import parse_choice, parse_datetime, parse_money
from .reading import cell_text

ZERO = Decimal("0.00")
IMPORTABLE_STATUSES = [
    c
    for c in PurchaseStatus.choices
    if c[0] in ("completed", "pending", "cancelled", "refunded")
]
STATUS_ALIASES = {
    "已完成": "completed", "完成": "completed", "已支付": "completed",
    "待处理": "pending", "待确认": "pending", "待收货": "pending",
    "已取消": "cancelled", "取消": "cancelled",
    "已退款": "refunded", "退款": "refunded",
}  # fmt: skip
CHANNEL_ALIASES = {
    "门店": "store", "店内": "store", "线下": "store", "线上": "online",
    "网店": "online", "商城": "online", "小程序": "app", "app": "app",
    "电话": "phone", "其他": "other",
}  # fmt: skip
MEMBER_LOOKUPS = ("phone", "member_code", "external_id")
REQUIRED = ("external_order_id", "amount", "occurred_at")


def recompute_member_figures(*, shop, member_ids) -> int:
    """Set total spent, orders, first and last purchase of `member_ids` from their
    purchases, in one statement. Counted purchases only, net of refunds."""
    counted = Purchase.objects.filter(
        shop=shop, member=OuterRef("pk"), status__in=COUNTED_STATUSES
    ).order_by()

    def figure(expression):
        return Subquery(counted.values("member").annotate(v=expression).values("v")[:1])

    return Member.objects.filter(shop=shop, pk__in=list(member_ids)).update(
        total_spent=Coalesce(
            figure(Sum(F("paid_amount") - F("refunded_amount"))), Value(ZERO)
        ),
        order_count=Coalesce(figure(Count("id")), Value(0)),
        first_purchase_at=figure(Min("occurred_at")),
        last_purchase_at=figure(Max("occurred_at")),
    )


class PurchaseImporter(RowImporter):
    key_fields = ("external_order_id",)

    def setup(self) -> None:
        self.region = self.shop.country
        self.stores = {
            code.lower(): pk for pk, code in Store.objects.values_list("pk", "code")
        }

    def parse_cell(self, field: str, raw: Any, data: dict) -> None:
        text = cell_text(raw)
        if field == "phone":
            data["phone"] = normalize_phone(text, region=self.region)
        elif field in ("member_code", "external_id", "external_order_id", "note"):
            limit = 200 if field == "note" else 64
            if len(text) > limit:
                raise ValidationError(
                    _("Keep this under %(limit)s characters.") % {"limit": limit}
                )
            data[field] = text.upper() if field == "member_code" else text
        elif field in ("amount", "discount", "paid_amount"):
            data[field] = parse_money(raw)
        elif field == "store":
            store_id = self.stores.get(text.lower())
            if store_id is None:
                raise ValidationError(
                    _("There is no store with the code “%(value)s”.") % {"value": text}
                )
            data["store_id"] = store_id
        elif field == "occurred_at":
            data["occurred_at"] = parse_datetime(raw, zone=self.shop.zone)
        elif field == "status":
            data["status"] = parse_choice(
                raw, choices=IMPORTABLE_STATUSES, aliases=STATUS_ALIASES
            )
        elif field == "channel":
            data["channel"] = parse_choice(
                raw, choices=PurchaseChannel.choices, aliases=CHANNEL_ALIASES
            )

    def check_row(self, number: int, data: dict, result: ChunkResult) -> bool:
        ok = True
        for field in REQUIRED:
            if field not in data:
                result.error(number, self.header_for(field), _("This is required."))
                ok = False
        if not any(data.get(key) for key in MEMBER_LOOKUPS):
            result.error(
                number,
                self.header_for(*MEMBER_LOOKUPS),
                _("Give the member's phone, member code or external ID."),
            )
            ok = False
        if ok and "paid_amount" not in data:
            paid = data["amount"] - data.get("discount", ZERO)
            if paid < 0:
                result.error(
                    number,
                    self.header_for("discount"),
                    _("The discount is larger than the amount."),
                )
                return False
            data["paid_amount"] = paid
        return ok

    def members_for(self, parsed) -> dict[str, dict[str, int]]:
        query = Q()
        for key in MEMBER_LOOKUPS:
            values = {data[key] for _n, data in parsed if data.get(key)}
            if values:
                query |= Q(**{f"{key}__in": values})
        index: dict[str, dict[str, int]] = {key: {} for key in MEMBER_LOOKUPS}
        if query:
            for row in Member.objects.filter(query).values("pk", *MEMBER_LOOKUPS):
                for key in MEMBER_LOOKUPS:
                    if row[key]:
                        index[key][row[key]] = row["pk"]
        return index

    def run_chunk(self, rows, *, write: bool) -> ChunkResult:
        result = ChunkResult()
        parsed = [
            (n, d)
            for n, d in self.parse_rows(rows, result)
            if self.check_row(n, d, result)
        ]
        known_orders = set(
            Purchase.objects.filter(
                external_order_id__in=[d["external_order_id"] for _n, d in parsed]
            ).values_list("external_order_id", flat=True)
        )
        members = self.members_for(parsed)
        purchases = []
        for number, data in parsed:
            order = data["external_order_id"]
            if order in known_orders or order in self.seen["external_order_id"]:
                result.skip(number, data, order)
                continue
            self.seen["external_order_id"][order] = number
            found = {
                members[key][data[key]]
                for key in MEMBER_LOOKUPS
                if data.get(key) and data[key] in members[key]
            }
            if len(found) != 1:
                result.error(
                    number,
                    self.header_for(*MEMBER_LOOKUPS),
                    _("No member has this phone, member code or external ID.")
                    if not found
                    else _(
                        "The phone, member code and external ID name different members."
                    ),
                )
                continue
            purchases.append(self.purchase(data, member_id=found.pop()))
            result.show(number, "create", data)
        result.created = len(purchases)
        if write and purchases:
            Purchase.objects.bulk_create(purchases, batch_size=1000)
            recompute_member_figures(
                shop=self.shop, member_ids={p.member_id for p in purchases}
            )
        return result

    def purchase(self, data: dict, *, member_id: int) -> Purchase:
        status = data.get("status", PurchaseStatus.COMPLETED)
        return Purchase(
            shop=self.shop,
            member_id=member_id,
            store_id=data.get("store_id"),
            external_order_id=data["external_order_id"],
            amount=data["amount"],
            discount=data.get("discount", ZERO),
            paid_amount=data["paid_amount"],
            refunded_amount=data["paid_amount"] if status == "refunded" else ZERO,
            currency=self.shop.currency,
            channel=data.get("channel", PurchaseChannel.STORE),
            status=status,
            occurred_at=data["occurred_at"],
            completed_at=data["occurred_at"]
            if status != "pending" and status != "cancelled"
            else None,
            cancelled_at=data["occurred_at"] if status == "cancelled" else None,
            note=data.get("note", ""),
            created_by=self.acting_user,
        )
