"""factory-boy factories. Tenant factories write through `unscoped()`, so a test
can set up rows of any shop whatever the current shop is."""

import factory
from factory.django import DjangoModelFactory

from shops.models import (
    ApiKey,
    ApiKeyScope,
    Role,
    Shop,
    StaffMembership,
    Store,
    User,
    WebhookEndpoint,
)


class TenantFactory(DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return model_class.objects.unscoped()


class ShopFactory(DjangoModelFactory):
    class Meta:
        model = Shop
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


class StoreFactory(TenantFactory):
    class Meta:
        model = Store

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Store {n}")
    code = factory.Sequence(lambda n: f"S{n:03d}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-9")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(TenantFactory):
    class Meta:
        model = StaffMembership

    shop = factory.SubFactory(ShopFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.CLERK


def make_api_key(*, shop, scope=ApiKeyScope.WRITE, name="POS") -> tuple[ApiKey, str]:
    """Create a key for `shop`; returns the row and the plain key (shown once)."""
    api_key = ApiKey(shop=shop, name=name, scope=scope)
    plain = ApiKey.unscoped_keyring.assign_key(api_key)
    api_key.save()
    return api_key, plain


class WebhookEndpointFactory(TenantFactory):
    class Meta:
        model = WebhookEndpoint

    shop = factory.SubFactory(ShopFactory)
    url = "http://127.0.0.1:9/hook"
    events = factory.LazyFunction(lambda: ["*"])
