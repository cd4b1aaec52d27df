import pytest

from points.services import settlement
from tests.members.factories import MemberFactory
from tests.tiers.factories import make_ladder


@pytest.fixture
def ladder(shop):
    return make_ladder(shop)


@pytest.fixture
def member(shop):
    return MemberFactory(shop=shop)


class Till:
    """Records purchases through the settlement, as the API does."""

    def __init__(self, shop):
        self.shop = shop
        self.count = 0

    def buy(self, member, amount, *, complete=True, occurred_at=None):
        self.count += 1
        return settlement.record_purchase(
            shop=self.shop,
            member=member,
            external_order_id=f"T-{self.count}",
            amount=amount,
            complete=complete,
            occurred_at=occurred_at,
        )

    def refund(self, purchase, amount=None):
        return settlement.refund_purchase(purchase=purchase, amount=amount)


@pytest.fixture
def till(in_shop):
    return Till(in_shop)
