"""What a member still needs: for the next tier, and to keep the current one
at the period end, in figures and in a sentence for people."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from members.models import Purchase
from shops.tenancy import shop_scope
from tiers.models import Basis, DowngradeRule, ManualMode, MemberTier, Tier, Window

from .evaluation import manual_active
from .figures import (
    ORDER_STATUSES,
    SPEND_STATUSES,
    ZERO,
    Figures,
    local_today,
    midnight,
    window_of,
)
from .ladder import ladder_of, policy_of, shop_of, uses_orders, uses_spend


@dataclass(frozen=True)
class Progress:
    tier: Tier
    spend: Decimal
    orders: int
    next_tier: Tier | None
    spend_to_next: Decimal | None
    orders_to_next: int | None
    spend_to_keep: Decimal | None
    orders_to_keep: int | None
    keep_by: datetime.date | None
    sentence: str


def tier_progress(member, *, today=None) -> Progress | None:
    """None when the shop has no ladder."""
    return tier_progress_many([member], today=today).get(member.pk)


def tier_progress_many(members, *, today=None) -> dict:
    """{member id: Progress} for one shop's members (an API page) in a fixed
    number of queries: ladder, policy, the members' tier rows and, for a
    window other than lifetime, one GROUP BY over their purchases."""
    members = list(members)
    if not members:
        return {}
    shop = shop_of(members[0])
    ladder = ladder_of(shop)
    if not ladder:
        return {}
    policy = policy_of(shop)
    today = today or local_today(shop)
    ids = [m.pk for m in members]
    with shop_scope(shop):
        states = {
            s.member_id: s
            for s in MemberTier.objects.filter(shop=shop, member_id__in=ids)
        }
        figures = _figures_of(shop, policy, members, today)
    by_id = {t.pk: t for t in ladder}
    return {
        m.pk: _progress(policy, ladder, by_id, states.get(m.pk), figures[m.pk], today)
        for m in members
    }


def _figures_of(shop, policy, members, today) -> dict:
    if policy.window == Window.LIFETIME:
        return {
            m.pk: Figures(spend=m.total_spent or ZERO, orders=m.order_count or 0)
            for m in members
        }
    start_at, _end = window_of(policy, today)
    rows = (
        Purchase.objects.filter(
            shop=shop,
            member_id__in=[m.pk for m in members],
            occurred_at__gte=start_at,
            occurred_at__lt=midnight(shop, today + datetime.timedelta(days=1)),
            status__in=SPEND_STATUSES,
        )
        .values("member_id")
        .annotate(
            spend=Sum("paid_amount") - Sum("refunded_amount"),
            orders=Count("id", filter=Q(status__in=ORDER_STATUSES)),
        )
    )
    found = {
        r["member_id"]: Figures(spend=r["spend"] or ZERO, orders=r["orders"] or 0)
        for r in rows
    }
    return {m.pk: found.get(m.pk, Figures(ZERO, 0)) for m in members}


def _short(needed_spend, needed_orders, *, both: bool) -> str:
    parts = []
    if needed_spend:
        parts.append(_("Spend %(amount)s more") % {"amount": f"{needed_spend:.2f}"})
    if needed_orders:
        text = ngettext(
            "%(count)s more order", "%(count)s more orders", needed_orders
        ) % {"count": needed_orders}
        parts.append(text if parts else text[:1].upper() + text[1:])
    if len(parts) == 2:
        joined = _("%(first)s and %(second)s") if both else _("%(first)s or %(second)s")
        return joined % {"first": parts[0], "second": parts[1]}
    return parts[0] if parts else ""


def _missing(tier, figures: Figures, basis: str):
    spend = max(tier.min_spend - figures.spend, ZERO) if uses_spend(basis) else None
    orders = max(tier.min_orders - figures.orders, 0) if uses_orders(basis) else None
    if basis == Basis.EITHER and (spend == 0 or orders == 0):
        # Either one met is enough: nothing more is needed.
        return ZERO, 0
    return spend, orders


def _progress(policy, ladder, by_id, state, figures, today) -> Progress:
    tier = by_id[state.tier_id] if state is not None else ladder[0]
    fixed = manual_active(state, today) and state.manual_mode == ManualMode.FIXED
    floor = (
        by_id.get(state.manual_tier_id)
        if manual_active(state, today) and state.manual_mode == ManualMode.FLOOR
        else None
    )
    both = policy.basis == "both"
    sentences = []
    next_tier = None
    spend_to_next = orders_to_next = None
    if not fixed:
        next_tier = next((t for t in ladder if t.rank > tier.rank), None)
    if next_tier is not None:
        spend_to_next, orders_to_next = _missing(next_tier, figures, policy.basis)
        needs = _short(spend_to_next, orders_to_next, both=both)
        _start, window_end = window_of(policy, today)
        if window_end is not None:
            sentences.append(
                _("%(needs)s by %(date)s to reach %(tier)s.")
                % {
                    "needs": needs,
                    "date": date_format(window_end, "j M"),
                    "tier": tier_name(next_tier),
                }
            )
        else:
            sentences.append(
                _("%(needs)s to reach %(tier)s.")
                % {"needs": needs, "tier": tier_name(next_tier)}
            )
    keep_by = None
    spend_to_keep = orders_to_keep = None
    kept_by_rule = (
        fixed
        or tier.pk == ladder[0].pk
        or policy.window == Window.LIFETIME
        or policy.downgrade == DowngradeRule.NEVER
        or (floor is not None and floor.rank >= tier.rank)
    )
    if state is not None and not kept_by_rule:
        keep_by = state.grace_until or state.period_ends_on
    if keep_by is not None:
        spend_to_keep, orders_to_keep = _missing(tier, figures, policy.basis)
        needs = _short(spend_to_keep, orders_to_keep, both=both)
        if not needs:
            sentences.append(
                _("%(tier)s is kept at the period end on %(date)s.")
                % {"tier": tier_name(tier), "date": date_format(keep_by, "j M Y")}
            )
        else:
            sentences.append(
                _("%(needs)s by %(date)s to keep %(tier)s.")
                % {
                    "needs": needs,
                    "date": date_format(keep_by, "j M Y"),
                    "tier": tier_name(tier),
                }
            )
    if fixed:
        sentences.append(_("%(tier)s is set by the shop.") % {"tier": tier_name(tier)})
    elif next_tier is None:
        sentences.insert(0, _("%(tier)s is the top tier.") % {"tier": tier_name(tier)})
    return Progress(
        tier=tier,
        spend=figures.spend,
        orders=figures.orders,
        next_tier=next_tier,
        spend_to_next=spend_to_next,
        orders_to_next=orders_to_next,
        spend_to_keep=spend_to_keep,
        orders_to_keep=orders_to_keep,
        keep_by=keep_by,
        sentence=" ".join(sentences),
    )


def tier_name(tier) -> str:
    return tier.display_name()
