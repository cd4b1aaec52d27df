"""Writes on the tenant itself: sign-up, shops, stores, staff and API keys.

Every function takes the shop (or the row) explicitly, runs in one transaction,
and raises Django's `ValidationError` with a message a shop owner understands,
keyed by the argument's name, so that forms can show it on the right field.
Each runs inside `shop_scope(shop)`, so it works the same from a request, a
command or a test. `acting_user` is the person asking; None means the system
(a command, the demo loader). A given `acting_user` must be allowed to do it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shops.models import (
    ApiKey,
    ApiKeyScope,
    Role,
    Shop,
    StaffMembership,
    StaffStoreAccess,
    Store,
    User,
)
from shops.tenancy import shop_scope

# Fields an owner may change on their shop; slug and is_active are the platform's.
SHOP_SETTINGS_FIELDS = (
    "name",
    "currency",
    "time_zone",
    "country",
    "language",
    "logo",
    "brand_color",
)
FIRST_STORE_CODE = "main"


def _require_role(*, shop: Shop, acting_user: User | None, roles) -> None:
    """Refuse a person who is not an active member of `shop` with one of `roles`."""
    if acting_user is None or acting_user.is_superuser:
        return
    allowed = (
        StaffMembership.objects.unscoped()
        .filter(shop=shop, user=acting_user, is_active=True, role__in=list(roles))
        .exists()
    )
    if not allowed:
        raise PermissionDenied(_("Only the shop's owner can do this."))


def _sync_staff_flag(user: User) -> None:
    """A user may enter the admin while they have an active membership somewhere."""
    is_staff = (
        user.is_superuser
        or StaffMembership.objects.unscoped().filter(user=user, is_active=True).exists()
    )
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


def _check_password(password: str, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from error


# Shops and sign-up ------------------------------------------------------------


@transaction.atomic
def create_shop(
    *,
    name: str,
    slug: str,
    language: str | None = None,
    acting_user: User | None = None,
) -> Shop:
    """A new shop with its first store. Platform superusers and sign-up only."""
    if acting_user is not None and not acting_user.is_superuser:
        raise PermissionDenied(_("Only the platform can add shops here."))
    name = (name or "").strip()
    slug = (slug or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [_("Enter the shop's name.")]
    if not slug:
        errors["slug"] = [_("Enter a web address.")]
    else:
        try:
            validate_slug(slug)
        except ValidationError:
            errors["slug"] = [
                _(
                    "Use only English letters, digits, hyphens and underscores, "
                    "e.g. tea-house."
                )
            ]
        else:
            if Shop.objects.filter(slug=slug).exists():
                errors["slug"] = [
                    _("This web address is taken. Please choose another.")
                ]
    if errors:
        raise ValidationError(errors)

    shop = Shop(name=name, slug=slug)
    if language:
        shop.language = language
    shop.full_clean()
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError as error:  # Someone took the slug a moment ago.
        raise ValidationError(
            {"slug": [_("This web address is taken. Please choose another.")]}
        ) from error
    with shop_scope(shop):
        Store.objects.create(shop=shop, name=name[:120], code=FIRST_STORE_CODE)
    return shop


@transaction.atomic
def sign_up_shop(
    *,
    shop_name: str,
    slug: str,
    owner_email: str,
    owner_password: str,
    owner_name: str = "",
    language: str | None = None,
) -> tuple[Shop, User]:
    """A new shop, its first store, and its owner, who signs in with the email."""
    email = (owner_email or "").strip()
    username = email.lower()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["owner_email"] = [_("Enter a valid email address.")]
    else:
        exists = (
            User.objects.filter(username__iexact=username).exists()
            or User.objects.filter(email__iexact=email).exists()
        )
        if exists:
            errors["owner_email"] = [
                _(
                    "This email already has an account. Please log in instead; "
                    "the shop's owner can add you to more shops."
                )
            ]
    user = User(username=username, email=email, first_name=(owner_name or "")[:150])
    try:
        _check_password(owner_password, user, "owner_password")
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        shop = create_shop(name=shop_name, slug=slug, language=language)
    except ValidationError as error:
        renamed = {"name": "shop_name"}
        for field, messages in error.message_dict.items():
            errors[renamed.get(field, field)] = messages
    if errors:
        # Nothing is kept: the outer transaction rolls back the shop, if made.
        raise ValidationError(errors)

    user.is_staff = True
    user.set_password(owner_password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:
        raise ValidationError(
            {"owner_email": [_("This email already has an account.")]}
        ) from error
    with shop_scope(shop):
        StaffMembership.objects.create(shop=shop, user=user, role=Role.OWNER)
    return shop, user


@transaction.atomic
def update_shop(*, shop: Shop, acting_user: User | None = None, **changes) -> Shop:
    """Change the shop's settings (owners): name, currency, time zone, and so on."""
    _require_role(shop=shop, acting_user=acting_user, roles={Role.OWNER})
    unknown = set(changes) - set(SHOP_SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Not a shop setting: {', '.join(sorted(unknown))}")
    shop = Shop.objects.select_for_update().get(pk=shop.pk)
    for field, value in changes.items():
        setattr(shop, field, value)
    shop.full_clean()
    shop.save()
    return shop


# Stores ---------------------------------------------------------------------


def _save_store(store: Store) -> Store:
    taken = Store.objects.filter(code=store.code).exclude(pk=store.pk).exists()
    if taken:
        raise ValidationError(
            {"code": [_("Another store of this shop already uses this code.")]}
        )
    store.full_clean()
    try:
        with transaction.atomic():
            store.save()
    except IntegrityError as error:
        raise ValidationError(
            {"code": [_("Another store of this shop already uses this code.")]}
        ) from error
    return store


@transaction.atomic
def create_store(
    *,
    shop: Shop,
    name: str,
    code: str,
    address: str = "",
    phone: str = "",
    acting_user: User | None = None,
) -> Store:
    _require_role(shop=shop, acting_user=acting_user, roles={Role.OWNER})
    with shop_scope(shop):
        store = Store(shop=shop, name=name, code=code, address=address, phone=phone)
        return _save_store(store)


@transaction.atomic
def update_store(
    *,
    store: Store,
    name: str,
    code: str,
    address: str = "",
    phone: str = "",
    is_active: bool = True,
    acting_user: User | None = None,
) -> Store:
    _require_role(shop=store.shop, acting_user=acting_user, roles={Role.OWNER})
    with shop_scope(store.shop):
        store.name, store.code, store.address = name, code, address
        store.phone, store.is_active = phone, is_active
        return _save_store(store)


@transaction.atomic
def delete_store(*, store: Store, acting_user: User | None = None) -> None:
    _require_role(shop=store.shop, acting_user=acting_user, roles={Role.OWNER})
    with shop_scope(store.shop):
        store.delete()


# Staff ----------------------------------------------------------------------


def _stores_of(shop: Shop, stores: Iterable[Store | int]) -> list[Store]:
    """The given stores, each of which must belong to `shop`."""
    ids = {getattr(s, "pk", s) for s in stores}
    found = list(Store.objects.unscoped().filter(shop=shop, pk__in=ids))
    if len(found) != len(ids):
        raise ValidationError({"stores": [_("Choose stores of this shop only.")]})
    return found


def _set_stores(membership: StaffMembership, stores: list[Store]) -> None:
    StaffStoreAccess.objects.filter(membership=membership).exclude(
        store__in=stores
    ).delete()
    have = set(
        StaffStoreAccess.objects.filter(membership=membership).values_list(
            "store_id", flat=True
        )
    )
    StaffStoreAccess.objects.bulk_create(
        StaffStoreAccess(shop=membership.shop, membership=membership, store=store)
        for store in stores
        if store.pk not in have
    )


@transaction.atomic
def add_staff_member(
    *,
    shop: Shop,
    username: str,
    password: str,
    role: str,
    name: str = "",
    email: str = "",
    stores: Iterable[Store | int] = (),
    acting_user: User | None = None,
) -> StaffMembership:
    """A new user account that works in `shop` with `role` (owners only)."""
    _require_role(shop=shop, acting_user=acting_user, roles={Role.OWNER})
    username = (username or "").strip()
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [_("Choose owner, manager or clerk.")]
    user = User(username=username, email=(email or "").strip(), first_name=name[:150])
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        renamed = {"first_name": "name"}
        for field, messages in error.message_dict.items():
            errors[renamed.get(field, field)] = messages
    if username and User.objects.filter(username__iexact=username).exists():
        errors["username"] = [_("This username is taken. Please choose another.")]
    try:
        _check_password(password, user, "password")
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        chosen = _stores_of(shop, stores)
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)

    user.set_password(password)
    user.is_staff = True
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:
        raise ValidationError(
            {"username": [_("This username is taken. Please choose another.")]}
        ) from error
    with shop_scope(shop):
        membership = StaffMembership.objects.create(shop=shop, user=user, role=role)
        _set_stores(membership, chosen)
    return membership


def _lock_active_owners(shop: Shop) -> list[int]:
    """Lock the shop's active owner rows (pk order), so that two owners demoting
    each other at once cannot leave the shop without one."""
    return list(
        StaffMembership.objects.unscoped()
        .select_for_update()
        .filter(shop=shop, role=Role.OWNER, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _refuse_losing_last_owner(membership: StaffMembership, field: str) -> None:
    owners = _lock_active_owners(membership.shop)
    if owners == [membership.pk]:
        raise ValidationError(
            {
                field: [
                    _(
                        "A shop needs at least one active owner. Make someone "
                        "else an owner first."
                    )
                ]
            }
        )


@transaction.atomic
def change_staff_role(
    *, membership: StaffMembership, role: str, acting_user: User | None = None
) -> StaffMembership:
    _require_role(shop=membership.shop, acting_user=acting_user, roles={Role.OWNER})
    if role not in Role.values:
        raise ValidationError({"role": [_("Choose owner, manager or clerk.")]})
    if membership.role == Role.OWNER and role != Role.OWNER and membership.is_active:
        _refuse_losing_last_owner(membership, "role")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def set_staff_stores(
    *,
    membership: StaffMembership,
    stores: Iterable[Store | int],
    acting_user: User | None = None,
) -> StaffMembership:
    """Limit a staff member to some stores of their shop; none means every store."""
    _require_role(shop=membership.shop, acting_user=acting_user, roles={Role.OWNER})
    chosen = _stores_of(membership.shop, stores)
    with shop_scope(membership.shop):
        _set_stores(membership, chosen)
    return membership


@transaction.atomic
def deactivate_staff_member(
    *, membership: StaffMembership, acting_user: User | None = None
) -> StaffMembership:
    """Take away the member's access to this shop at once (their next request)."""
    _require_role(shop=membership.shop, acting_user=acting_user, roles={Role.OWNER})
    if not membership.is_active:
        return membership
    if membership.role == Role.OWNER:
        _refuse_losing_last_owner(membership, "is_active")
    membership.is_active = False
    membership.save(update_fields=["is_active"])
    _sync_staff_flag(membership.user)
    return membership


@transaction.atomic
def reactivate_staff_member(
    *, membership: StaffMembership, acting_user: User | None = None
) -> StaffMembership:
    _require_role(shop=membership.shop, acting_user=acting_user, roles={Role.OWNER})
    if not membership.is_active:
        membership.is_active = True
        membership.save(update_fields=["is_active"])
    _sync_staff_flag(membership.user)
    return membership


@transaction.atomic
def update_staff_member(
    *,
    membership: StaffMembership,
    role: str,
    stores: Iterable[Store | int],
    is_active: bool,
    acting_user: User | None = None,
) -> StaffMembership:
    """The staff form's save: role, stores and active, each through its service."""
    if is_active and not membership.is_active:
        reactivate_staff_member(membership=membership, acting_user=acting_user)
    if role != membership.role:
        change_staff_role(membership=membership, role=role, acting_user=acting_user)
    set_staff_stores(membership=membership, stores=stores, acting_user=acting_user)
    if not is_active and membership.is_active:
        deactivate_staff_member(membership=membership, acting_user=acting_user)
    return membership


# API keys -------------------------------------------------------------------


@transaction.atomic
def create_api_key(
    *,
    shop: Shop,
    name: str,
    scope: str,
    expires_at: datetime.datetime | None = None,
    acting_user: User | None = None,
) -> tuple[ApiKey, str]:
    """A new key for an integrator. The plain key is returned here, once only;
    the database keeps its hash."""
    _require_role(shop=shop, acting_user=acting_user, roles={Role.OWNER})
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = [_("Give the key a name, e.g. the till or web shop.")]
    if scope not in ApiKeyScope.values:
        errors["scope"] = [_("Choose read, or read and write.")]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [_("The expiry must be in the future.")]
    if errors:
        raise ValidationError(errors)
    with shop_scope(shop):
        api_key = ApiKey(
            shop=shop,
            name=name.strip()[:50],
            scope=scope,
            expiry_date=expires_at,
            created_by=acting_user,
        )
        plain = ApiKey.objects.assign_key(api_key)
        api_key.save()
    return api_key, plain


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey, acting_user: User | None = None) -> ApiKey:
    """Stop a key working at once. This cannot be undone."""
    _require_role(shop=api_key.shop, acting_user=acting_user, roles={Role.OWNER})
    if not api_key.revoked:
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
    return api_key


__all__ = [
    "add_staff_member",
    "change_staff_role",
    "create_api_key",
    "create_shop",
    "create_store",
    "deactivate_staff_member",
    "delete_store",
    "reactivate_staff_member",
    "revoke_api_key",
    "set_staff_stores",
    "sign_up_shop",
    "update_shop",
    "update_staff_member",
    "update_store",
]
