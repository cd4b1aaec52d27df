"""The points liability report (managers and owners): the points members hold
(the remaining points of open lots, pending ones included) and what they are
worth at the shop's cash rate, by the member's home store and by the month the
points expire (in the shop's time zone).

Points past their expiry still count until the nightly expiry run writes
them off (they show under their past month). Two GROUP BY statements over
the shop's open lots (the partial index on open
lots serves them); no Python loop over members or lots.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from points.models import PointsLot, PointsPolicy
from shops.admin.base import MANAGERS, role_allows
from shops.models import Store

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LiabilityRow:
    label: str
    points: int
    value: Decimal
    key: object = None


@dataclass(frozen=True)
class Liability:
    points: int
    value: Decimal
    currency: str
    cash_points: int
    cash_value: Decimal
    by_store: list[LiabilityRow]
    by_month: list[LiabilityRow]


def worth(points: int, policy: PointsPolicy) -> Decimal:
    """`points` in money at the policy's rate, to the cent."""
    value = Decimal(points) * policy.cash_value / Decimal(policy.cash_points)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def liability(*, shop) -> Liability:
    """The shop's outstanding points and their cash value (see the module doc)."""
    # Without a saved policy, the defaults the ledger applies.
    policy = PointsPolicy.objects.filter(shop=shop).first() or PointsPolicy(shop=shop)
    open_lots = PointsLot.objects.filter(shop=shop, remaining__gt=0).order_by()

    store_sums = list(
        open_lots.values("account__member__home_store_id").annotate(
            points=Sum("remaining")
        )
    )
    names = dict(
        Store.objects.filter(
            shop=shop,
            pk__in=[
                row["account__member__home_store_id"]
                for row in store_sums
                if row["account__member__home_store_id"]
            ],
        ).values_list("pk", "name")
    )
    by_store = sorted(
        (
            LiabilityRow(
                label=names.get(row["account__member__home_store_id"])
                or gettext("No home store"),
                points=row["points"],
                value=worth(row["points"], policy),
                key=row["account__member__home_store_id"],
            )
            for row in store_sums
        ),
        key=lambda row: (row.key is None, row.label),
    )

    month_sums = list(
        open_lots.annotate(month=TruncMonth("expires_at", tzinfo=shop.zone))
        .values("month")
        .annotate(points=Sum("remaining"))
        .order_by("month")
    )
    by_month = [
        LiabilityRow(
            label=row["month"].strftime("%Y-%m")
            if row["month"]
            else gettext("Never expire"),
            points=row["points"],
            value=worth(row["points"], policy),
            key=row["month"].date() if row["month"] else None,
        )
        for row in sorted(month_sums, key=lambda row: (row["month"] is None,))
    ]
    total = sum(row.points for row in by_store)
    return Liability(
        points=total,
        value=worth(total, policy),
        currency=shop.currency,
        cash_points=policy.cash_points,
        cash_value=policy.cash_value,
        by_store=by_store,
        by_month=by_month,
    )


class LiabilityReportLink:
    """A "Liability report" button on an admin list (managers and owners):
    name "liability_report" in the admin's `actions_list`."""

    def has_liability_report_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    @action(
        description=_("Liability report"),
        permissions=["liability_report"],
        icon="account_balance",
    )
    def liability_report(self, request):
        return redirect("admin:points_liability")


def liability_view(model_admin, request):
    if request.shop is None or not role_allows(request, MANAGERS):
        raise PermissionDenied
    return TemplateResponse(
        request,
        "admin/points/liability.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": gettext("Points liability"),
            "report": liability(shop=request.shop),
        },
    )
