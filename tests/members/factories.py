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


class TagFactory(TenantFactory):
    class Meta:
        model = "members.Tag"

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Tag {n}")


class TagRuleFactory(TenantFactory):
    class Meta:
        model = "members.TagRule"

    tag = factory.SubFactory(TagFactory)
    shop = factory.SelfAttribute("tag.shop")
    kind = "min_total_spent"
    params = factory.LazyFunction(lambda: {"amount": "100.00"})


class CustomFieldFactory(TenantFactory):
    class Meta:
        model = "members.CustomField"

    shop = factory.SubFactory(ShopFactory)
    key = factory.Sequence(lambda n: f"field{n}")
    label = factory.Sequence(lambda n: f"Field {n}")


class PurchaseFactory(TenantFactory):
    """A completed purchase written directly (the member's figures untouched)."""

    class Meta:
        model = "members.Purchase"

    member = factory.SubFactory(MemberFactory)
    shop = factory.SelfAttribute("member.shop")
    external_order_id = factory.Sequence(lambda n: f"ORDER-{n}")
    amount = "100.00"
    paid_amount = factory.SelfAttribute("amount")
    currency = "CNY"
    status = "completed"
