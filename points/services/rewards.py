"""The rewards catalogue (积分商城): what members see, redeeming, cancelling.

Locks, always in this order (the settlement's refunds take the purchase first,
then the same): the member row (cancel, or a refund's return: the ledger's
restore locks it too), the member's points account, the redemption row, then
the reward row (its stock). One order everywhere, so a redemption, a cancel
and a refund of one member never deadlock. A redemption and its debit are
written in one transaction; a refusal writes nothing.

Idempotency: a redemption's debit carries the key `reward:<key>`, unique in
the shop (the ledger's constraint). A replay with the same key returns the
first redemption (with `replayed = True`), looked up AFTER the locks so a
concurrent retry waits for the first and then finds it; the same key with a
different member, reward, quantity or store is refused
(`IdempotencyConflict`).

Events: the ledger emits `points.redeemed` for every redeem entry it writes,
so this module emits none of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, MemberStatus
from members.services.purchases import MemberErased
from points.models import (
    EntryKind,
    EntrySource,
    PointsAccount,
    PointsEntry,
    Redemption,
    RedemptionKind,
    RedemptionStatus,
    Reward,
)
from points.services import ledger
from shops.errors import NotFound
from shops.models import Shop, Store
from tiers.services.ladder import tier_of

MAX_QUANTITY = 100
MAX_KEY_LENGTH = 100
KEY_PREFIX = "reward:"


class RedemptionRefused(ledger.PointsError):
    """A redemption (or a payment with points) the rules refuse.

    Like the ledger's errors, both a `ValidationError` (forms show `message`,
    `exc.code` says why) and a `DomainError` (the API's error shape, with
    `status_code`: 400 for a bad value, 409 for what the state refuses)."""

    def __init__(self, message, *, code: str, field: str | None = None):
        self.code = code
        self.status_code = 409 if code in STATE_CODES else 400
        super().__init__(message, fields={field: [message]} if field else None)


# Refusals of a well-formed request by the current state (409); the rest are
# bad values (400).
STATE_CODES = frozenset(
    {
        "reward_not_available",
        "out_of_stock",
        "tier_not_allowed",
        "limit_reached",
        "order_paid",
        "order_closed",
    }
)


# Why a reward cannot be redeemed (the code) and what staff and members read.
REASONS = {
    "reward_not_available": _("This reward cannot be redeemed at this time."),
    "out_of_stock": _("This reward is out of stock."),
    "tier_not_allowed": _("This reward is not offered to the member's tier."),
    "limit_reached": _("The member has already redeemed this reward the most times."),
    "insufficient_points": _("The member does not have enough points."),
}


def refuse(code: str, message=None, *, field: str | None = None):
    message = message or REASONS[code]
    if code == "insufficient_points":
        raise ledger.InsufficientPoints(
            message, fields={field: [message]} if field else None
        )
    raise RedemptionRefused(message, code=code, field=field)


def conflict():
    message = _("This idempotency key was used for a different request.")
    raise ledger.IdempotencyConflict(message, fields={"idempotency_key": [message]})


@dataclass(frozen=True)
class Availability:
    """Whether a member may redeem one of a reward now, and if not, why."""

    redeemable: bool
    reason: str = ""  # one of REASONS' codes
    message: str = ""


# ----------------------------------------------------------------- reading


def _visible(now: datetime) -> tuple[Q, dict]:
    """Shown: active, inside the visible window; an empty visible bound falls
    back to the redeemable one ("empty: while redeemable")."""
    shown_from = Coalesce("visible_from", "available_from")
    shown_until = Coalesce("visible_until", "available_until")
    return (
        Q(is_active=True)
        & (Q(shown_from__isnull=True) | Q(shown_from__lte=now))
        & (Q(shown_until__isnull=True) | Q(shown_until__gt=now))
    ), {"shown_from": shown_from, "shown_until": shown_until}


def visible_rewards(
    *, shop: Shop, member: Member | None = None, now: datetime | None = None
) -> list[Reward]:
    """The rewards members see now, cheapest first.

    With `member`: each reward carries `availability` (an `Availability`:
    redeemable for them now, or the reason why not). A few statements whatever
    the catalogue's size: the rewards with their tiers, and for a member their
    account, tier and redemption counts.
    """
    now = now or timezone.now()
    condition, annotations = _visible(now)
    rewards = list(
        Reward.objects.filter(shop=shop)
        .annotate(**annotations)
        .filter(condition)
        .prefetch_related("tiers")
        .order_by("points_price", "id")
    )
    if member is not None:
        if member.shop_id != shop.pk:
            raise NotFound()
        context = _MemberContext.load(member, [r.pk for r in rewards])
        for reward in rewards:
            reward.availability = context.availability(reward, now=now)
    return rewards


def redeemable_rewards(
    *, shop: Shop, member: Member, now: datetime | None = None
) -> list[Reward]:
    """The visible rewards `member` can redeem one of now."""
    return [
        reward
        for reward in visible_rewards(shop=shop, member=member, now=now)
        if reward.availability.redeemable
    ]


def reward_availability(
    *, member: Member, reward: Reward, quantity: int = 1, now: datetime | None = None
) -> Availability:
    """Whether `member` may redeem `quantity` of `reward` now (no locks)."""
    context = _MemberContext.load(member, [reward.pk])
    return context.availability(reward, quantity=quantity, now=now or timezone.now())


@dataclass
class _MemberContext:
    spendable: int
    tier_id: int | None
    taken: dict[int, int]  # reward id -> quantity redeemed and not cancelled

    @classmethod
    def load(cls, member: Member, reward_ids: list[int], account=None):
        if account is None:
            account = account_of(member)
        return cls(
            spendable=spendable(account),
            tier_id=_tier_id(member),
            taken=_taken(member, reward_ids),
        )

    def availability(self, reward: Reward, *, now, quantity: int = 1) -> Availability:
        code = _refusal(
            reward,
            quantity=quantity,
            now=now,
            spendable=self.spendable,
            tier_id=self.tier_id,
            taken=self.taken.get(reward.pk, 0),
        )
        if code:
            return Availability(False, code, str(REASONS[code]))
        return Availability(True)


def _refusal(reward, *, quantity, now, spendable, tier_id, taken) -> str:
    """The first reason `quantity` of `reward` cannot be redeemed, or ""."""
    if (
        not reward.is_active
        or (reward.available_from and reward.available_from > now)
        or (reward.available_until and reward.available_until <= now)
    ):
        return "reward_not_available"
    allowed = {tier.pk for tier in reward.tiers.all()}
    if allowed and tier_id not in allowed:
        return "tier_not_allowed"
    if reward.per_member_limit is not None and taken + quantity > (
        reward.per_member_limit
    ):
        return "limit_reached"
    if reward.stock is not None and reward.stock < quantity:
        return "out_of_stock"
    if spendable < reward.points_price * quantity:
        return "insufficient_points"
    return ""


def spendable(account, *, now: datetime | None = None) -> int:
    """Points the member can spend now: what the ledger's debit could take
    (available lots not past their expiry; nothing while the balance is below
    zero). One definition with the ledger, so a quote or a catalogue never
    promises points a debit then refuses."""
    if account.pk is None or account.balance <= 0:
        return 0
    return ledger.takeable(account, now=now)


def _tier_id(member: Member) -> int | None:
    """The member's current tier (the entry tier when they never moved)."""
    tier = tier_of(member)
    return tier.pk if tier is not None else None


def account_of(member: Member) -> PointsAccount:
    """The member's account for reading: an unsaved empty one when they have
    none yet (a read never creates the row)."""
    account = PointsAccount.objects.filter(
        shop_id=member.shop_id, member_id=member.pk
    ).first()
    if account is None:
        account = PointsAccount(shop_id=member.shop_id, member=member)
    return account


def _taken(member: Member, reward_ids: list[int]) -> dict[int, int]:
    if not reward_ids:
        return {}
    rows = (
        Redemption.objects.filter(
            shop_id=member.shop_id,
            reward_id__in=reward_ids,
            member=member,
            status=RedemptionStatus.COMPLETED,
        )
        .values("reward_id")
        .annotate(taken=Sum("quantity"))
    )
    return {row["reward_id"]: row["taken"] for row in rows}


# ----------------------------------------------------------------- writing


def clean_quantity(quantity) -> int:
    if isinstance(quantity, bool):
        quantity = None
    try:
        quantity = int(quantity)
    except (TypeError, ValueError):
        quantity = 0
    if not 1 <= quantity <= MAX_QUANTITY:
        refuse(
            "invalid_quantity",
            _("The quantity is a whole number from 1 to %(most)d.")
            % {"most": MAX_QUANTITY},
            field="quantity",
        )
    return quantity


def clean_key(key) -> str:
    key = (key or "").strip() if isinstance(key, str) else None
    if key is None or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        refuse(
            "invalid_idempotency_key",
            _("The idempotency key is up to %(most)d characters.")
            % {"most": MAX_KEY_LENGTH},
            field="idempotency_key",
        )
    return key


def check_member(member: Member) -> None:
    """An erased member's data is gone: they spend no more points."""
    if member.status == MemberStatus.ERASED:
        raise MemberErased(_("This member's data was erased; they cannot redeem."))


def check_store(store: Store | None, member: Member) -> None:
    if store is not None and store.shop_id != member.shop_id:
        refuse("invalid_store", _("No such store in this shop."), field="store")


def redeem_reward(
    *,
    member: Member,
    reward: Reward,
    quantity: int = 1,
    store: Store | None = None,
    idempotency_key: str = "",
    acting_user=None,
    actor_label: str = "",
) -> Redemption:
    """Redeem `quantity` of `reward` for `member`: debit its points, take it
    from the stock, record the redemption (completed). Refusals
    (`RedemptionRefused`, see REASONS; `invalid_quantity`) change nothing."""
    if reward.shop_id != member.shop_id:
        raise NotFound()
    quantity = clean_quantity(quantity)
    key = clean_key(idempotency_key)
    check_store(store, member)
    check_member(member)
    now = timezone.now()
    with transaction.atomic():
        account = ledger.account_for(member, lock=True)
        reward = (
            Reward.objects.filter(shop_id=member.shop_id, pk=reward.pk)
            .select_for_update(of=("self",))
            .get()
        )
        if key:
            first = _replay(member, KEY_PREFIX + key)
            if first is not None:
                if (first.kind, first.reward_id, first.quantity, first.store_id) != (
                    RedemptionKind.REWARD,
                    reward.pk,
                    quantity,
                    store.pk if store else None,
                ):
                    conflict()
                return first
        code = _refusal(
            reward,
            quantity=quantity,
            now=now,
            spendable=spendable(account, now=now),
            tier_id=_tier_id(member),
            taken=_taken(member, [reward.pk]).get(reward.pk, 0),
        )
        if code:
            refuse(code)
        points = reward.points_price * quantity
        debit = ledger.debit(
            member=member,
            points=points,
            kind=EntryKind.REDEEM,
            source=EntrySource.REWARD,
            reason=str(
                _("%(reward)s, %(quantity)d pcs")
                % {"reward": reward.name, "quantity": quantity}
            )[:200],
            reference=f"reward:{reward.pk}",
            idempotency_key=KEY_PREFIX + key if key else "",
            acting_user=acting_user,
            actor_label=actor_label,
        )
        if reward.stock is not None:
            Reward.objects.filter(shop_id=reward.shop_id, pk=reward.pk).update(
                stock=F("stock") - quantity
            )
            reward.stock -= quantity
        redemption = Redemption.objects.create(
            shop_id=member.shop_id,
            member=member,
            kind=RedemptionKind.REWARD,
            reward=reward,
            quantity=quantity,
            points=points,
            store=store,
            status=RedemptionStatus.COMPLETED,
            debit=debit,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        redemption.replayed = False
        return redemption


def lock_account(redemption: Redemption) -> None:
    """Lock the redemption's member row, then their points account, until the
    end of the transaction (the first locks of the order in the module
    docstring). The member row first: purchases and refunds update it before
    they reach the points, and the ledger's restore locks it with the
    account."""
    shop_id = redemption.shop_id
    Member.objects.filter(shop_id=shop_id, pk=redemption.member_id).select_for_update(
        of=("self",)
    ).values_list("pk").get()
    PointsAccount.objects.filter(
        shop_id=shop_id, pk=redemption.debit.account_id
    ).select_for_update(of=("self",)).values_list("pk").get()


def _replay(member: Member, key: str) -> Redemption | None:
    """The redemption whose debit carries `key`, or None (conflict when the key
    belongs to another member or to an entry that is no redemption)."""
    entry = (
        PointsEntry.objects.filter(shop_id=member.shop_id, idempotency_key=key)
        .only("pk", "account_id")
        .first()
    )
    if entry is None:
        return None
    first = (
        Redemption.objects.filter(shop_id=member.shop_id, debit=entry)
        .select_related("reward")
        .first()
    )
    if first is None or first.member_id != member.pk:
        conflict()
    first.replayed = True
    return first


def cancel_redemption(
    *,
    redemption: Redemption,
    reason: str = "",
    acting_user=None,
    actor_label: str = "",
) -> Redemption:
    """Cancel a redemption: its points come back with their original expiry,
    a reward's stock goes back up. Cancelling a cancelled redemption changes
    nothing and returns it (`replayed = True`).

    A payment with points that refunds already returned in part gives back
    only the rest."""
    if not isinstance(reason, str) or len(reason) > 200 or "\x00" in reason:
        refuse("invalid_reason", _("The reason is up to 200 characters."))
    found = (
        Redemption.objects.filter(shop_id=redemption.shop_id, pk=redemption.pk)
        .select_related("debit")
        .first()
    )
    if found is None:
        raise NotFound()
    with transaction.atomic():
        lock_account(found)
        redemption = (
            Redemption.objects.filter(shop_id=found.shop_id, pk=found.pk)
            .select_related("debit")
            .select_for_update(of=("self",))
            .get()
        )
        if redemption.status == RedemptionStatus.CANCELLED:
            redemption.replayed = True
            return redemption
        reward = None
        if redemption.reward_id is not None:
            reward = (
                Reward.objects.filter(
                    shop_id=redemption.shop_id, pk=redemption.reward_id
                )
                .select_for_update(of=("self",))
                .get()
            )
        from points.services.cash import return_rest

        return_rest(
            redemption=redemption,
            reason=reason or _("Redemption cancelled"),
            idempotency_key=f"redemption:{redemption.pk}:cancel",
            acting_user=acting_user,
            actor_label=actor_label,
        )
        if reward is not None and reward.stock is not None:
            Reward.objects.filter(shop_id=reward.shop_id, pk=reward.pk).update(
                stock=F("stock") + redemption.quantity
            )
        redemption.status = RedemptionStatus.CANCELLED
        redemption.cancelled_at = timezone.now()
        redemption.save(update_fields=["status", "cancelled_at"])
        redemption.replayed = False
        return redemption
