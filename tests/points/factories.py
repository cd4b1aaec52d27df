"""factory-boy factories of the points app (ledger policy and rules).

Tenant factories write through `unscoped()` (see tests/factories.py)."""

import factory

from points.models import EarningRule, PointsPolicy, RuleKind
from tests.factories import ShopFactory, TenantFactory


class PointsPolicyFactory(TenantFactory):
    class Meta:
        model = PointsPolicy
        django_get_or_create = ("shop",)

    shop = factory.SubFactory(ShopFactory)
    expiry = "never"


class EarningRuleFactory(TenantFactory):
    class Meta:
        model = EarningRule
        skip_postgeneration_save = True

    shop = factory.SubFactory(ShopFactory)
    kind = RuleKind.PURCHASE
    points_per_unit = "1.00"

    @factory.post_generation
    def excluded_stores(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.excluded_stores.set(extracted)
