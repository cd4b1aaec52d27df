"""Bonus points by task (beat: config/settings.py): birthdays once a day,
registration and completed-profile bonuses every few minutes.

Registration and profile bonuses are given here, not by the members app
(which never imports points): `award_signup_bonuses_everywhere` gives them,
set-based, to members who joined or changed their profile within the look-back
window (points.services.bonuses.SIGNUP_LOOKBACK). Everything is idempotent by
key: running twice gives nothing twice.
"""

from __future__ import annotations

from celery import shared_task

from points.services import bonuses
from shops.models import Shop
from shops.tenancy import shop_task

__all__ = [
    "award_birthday_bonuses",
    "award_birthday_bonuses_everywhere",
    "award_signup_bonuses",
    "award_signup_bonuses_everywhere",
]


@shop_task(name="points.award_birthday_bonuses")
def award_birthday_bonuses(*, shop: Shop) -> int:
    """Today's birthdays (the shop's today); returns members rewarded."""
    return bonuses.award_birthday_bonuses(shop=shop)


@shared_task(name="points.award_birthday_bonuses_everywhere")
def award_birthday_bonuses_everywhere() -> int:
    return _each_active_shop(award_birthday_bonuses)


@shop_task(name="points.award_signup_bonuses")
def award_signup_bonuses(*, shop: Shop) -> int:
    return bonuses.award_signup_bonuses(shop=shop)


@shared_task(name="points.award_signup_bonuses_everywhere")
def award_signup_bonuses_everywhere() -> int:
    return _each_active_shop(award_signup_bonuses)


def _each_active_shop(task) -> int:
    queued = 0
    for shop_id in Shop.objects.filter(is_active=True).values_list("pk", flat=True):
        task.delay(shop_id=shop_id)
        queued += 1
    return queued
