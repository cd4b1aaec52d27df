"""Load a demo shop with real-looking data; safe to run again.

`make run` calls it. Re-running keeps the rows, resets the demo passwords to
the printed ones and replaces the demo API key (a hashed key cannot be shown
again, so the old one is revoked and a new one printed).

Each app adds its own section: this command runs the shops section here, then
`load(demo)` from `<app>/demo.py` of every installed app that has one, in
INSTALLED_APPS order (the dependency order: shops, members, tiers, ...), so a
lower app never imports a higher one. A section must be safe to run again and
may append lines to `demo.summary`, which is printed at the end.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from shops.models import ApiKey, ApiKeyScope, Role, Shop, StaffMembership, Store, User
from shops.services import tenants
from shops.tenancy import shop_scope

# Demo logins, printed by the command and in README.md. Local demo data only.
OWNER_PASSWORD = "Oolong-Pot-42"  # noqa: S105
CLERK_PASSWORD = "Jasmine-Cup-17"  # noqa: S105
DEMO_KEY_NAME = "Demo till"
SHOP_NAME = "Jade Leaf Tea House 玉叶茶馆"
# code -> (name, address). The first is the store that sign-up creates.
STORES = {
    tenants.FIRST_STORE_CODE: (
        "Jing'an Flagship 静安旗舰店",
        "1266 West Nanjing Road, Jing'an, Shanghai 上海市静安区南京西路1266号",
    ),
    "xuhui": (
        "Xuhui Garden 徐汇花园店",
        "8 Hengshan Road, Xuhui, Shanghai 上海市徐汇区衡山路8号",
    ),
}
CLERK_STORE = "xuhui"


@dataclass
class Demo:
    """What the sections share: the shop and its people, and the lines to print."""

    shop: Shop
    base_url: str
    stores: dict[str, Store] = field(default_factory=dict)
    owner: User | None = None
    clerk: User | None = None
    api_key: str = ""
    summary: list[str] = field(default_factory=list)


def owner_email(slug: str) -> str:
    return f"owner@{slug}.example.com"


def clerk_username(slug: str) -> str:
    return f"clerk@{slug}.example.com"


def _reset_password(user: User, password: str) -> None:
    # The demo promises the printed passwords work; nobody else resets them.
    user.set_password(password)
    user.is_active = user.is_staff = True
    user.save(update_fields=["password", "is_active", "is_staff"])


def _ensure_membership(
    shop: Shop, user: User, role: str, stores: list[Store]
) -> StaffMembership:
    """The user's membership in the demo shop, made again if someone removed it
    (the shop was deleted and the user kept, for instance)."""
    with shop_scope(shop):
        membership, _made = StaffMembership.objects.get_or_create(
            shop=shop, user=user, defaults={"role": role}
        )
    tenants.update_staff_member(
        membership=membership, role=role, stores=stores, is_active=True
    )
    return membership


def _shop_and_owner(slug: str) -> tuple[Shop, User]:
    email = owner_email(slug)
    shop = Shop.objects.filter(slug=slug).first()
    owner = User.objects.filter(username__iexact=email).first()
    if shop is None and owner is None:
        return tenants.sign_up_shop(
            shop_name=SHOP_NAME,
            slug=slug,
            owner_email=email,
            owner_password=OWNER_PASSWORD,
            owner_name="Lin Mei 林梅",
            language="zh-hans",
        )
    if shop is None:
        shop = tenants.create_shop(name=SHOP_NAME, slug=slug, language="zh-hans")
    if owner is None:
        owner = User.objects.create_user(
            username=email, email=email, password=OWNER_PASSWORD, is_staff=True
        )
    _ensure_membership(shop, owner, Role.OWNER, stores=[])
    return shop, owner


def load_shops(demo: Demo) -> None:
    """Two stores, an owner, a clerk limited to one store, a write-scope key."""
    shop = demo.shop
    for code, (name, address) in STORES.items():
        with shop_scope(shop):
            store = Store.objects.filter(code=code).first()
        if store is None:
            store = tenants.create_store(
                shop=shop, name=name, code=code, address=address
            )
        elif store.name != name or store.address != address:
            store = tenants.update_store(
                store=store, name=name, code=code, address=address
            )
        demo.stores[code] = store

    username = clerk_username(shop.slug)
    clerk = User.objects.filter(username__iexact=username).first()
    if clerk is None:
        membership = tenants.add_staff_member(
            shop=shop,
            username=username,
            password=CLERK_PASSWORD,
            role=Role.CLERK,
            name="Zhou Xiaoyu 周小雨",
            email=username,
            stores=[demo.stores[CLERK_STORE]],
        )
        clerk = membership.user
    else:
        _ensure_membership(shop, clerk, Role.CLERK, [demo.stores[CLERK_STORE]])
        _reset_password(clerk, CLERK_PASSWORD)
    demo.clerk = clerk

    with shop_scope(shop):
        old_keys = list(ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked=False))
    for old in old_keys:
        tenants.revoke_api_key(api_key=old)
    _key, demo.api_key = tenants.create_api_key(
        shop=shop, name=DEMO_KEY_NAME, scope=ApiKeyScope.WRITE
    )

    clerk_store = demo.stores[CLERK_STORE].name
    demo.summary += [
        _("Admin:    %(url)s/admin/") % {"url": demo.base_url},
        _("Owner:    %(login)s  password %(password)s")
        % {"login": demo.owner.username, "password": OWNER_PASSWORD},
        _("Clerk:    %(login)s  password %(password)s  (only %(store)s)")
        % {"login": clerk.username, "password": CLERK_PASSWORD, "store": clerk_store},
        _("API key:  %(key)s  (read and write; replaces the previous demo key)")
        % {"key": demo.api_key},
        _('Try it:   curl -H "Authorization: Api-Key %(key)s" %(url)s/api/v1/shop')
        % {"key": demo.api_key, "url": demo.base_url},
    ]


def app_sections():
    """`load(demo)` of every other installed app that has a `demo` module."""
    for config in apps.get_app_configs():
        if config.name == "shops":
            continue
        module_name = f"{config.name}.demo"
        if importlib.util.find_spec(module_name) is not None:
            yield importlib.import_module(module_name).load


class Command(BaseCommand):
    help = "Create or refresh a demo shop and print its logins and API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--shop-slug", default="demo", help="The demo shop's web address."
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the site is served, for the printed links.",
        )

    def handle(self, *args, shop_slug: str, base_url: str, **options):
        try:
            with transaction.atomic():
                shop, owner = _shop_and_owner(shop_slug)
                _reset_password(owner, OWNER_PASSWORD)
                demo = Demo(shop=shop, base_url=base_url.rstrip("/"), owner=owner)
                load_shops(demo)
                for load in app_sections():
                    with shop_scope(shop):
                        load(demo)
        except ValidationError as error:
            raise CommandError(
                _("The demo could not be loaded: %(error)s") % {"error": error}
            ) from error

        self.stdout.write(
            self.style.SUCCESS(
                _("Demo shop “%(name)s” is ready (web address %(slug)s).")
                % {"name": shop.name, "slug": shop.slug}
            )
        )
        for line in demo.summary:
            self.stdout.write("  " + line)
