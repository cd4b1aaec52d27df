"""factory-boy factories of the members app (shared by every helper: append only).

Tenant factories write through `unscoped()` (see tests/factories.py)."""

import factory

from members.codes import encode
from members.models import Member
from tests.factories import ShopFactory, TenantFactory


class MemberFactory(TenantFactory):
    class Meta:
        model = Member

    shop = factory.SubFactory(ShopFactory)
    # Far above what next_code() hands out in a test, so the two never collide.
    member_code = factory.Sequence(lambda n: encode(10_000_000 + n))
    name = factory.Sequence(lambda n: f"Member {n}")
    phone = factory.Sequence(lambda n: f"+861380013{n:04d}")
    phone_last4 = factory.LazyAttribute(lambda m: m.phone[-4:] if m.phone else "")
