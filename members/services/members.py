"""Registering members, changing their profile and consent, and the timeline.

One way in for every channel (counter, API, portal, import): the same checks,
the same member code, the same audit row and the same webhook. Each function
runs in one transaction inside `shop_scope(member's shop)`, so a refusal
leaves nothing behind. `acting_user` is the staff member; `actor_label` names
anyone else ("API key POS", "portal", "import").
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.codes import next_code
from members.events import MEMBER_CREATED, MEMBER_UPDATED
from members.models import (
    ConsentChange,
    Member,
    MemberChange,
    MemberSource,
    MemberStatus,
)
from members.services.member_profile import clean_profile, present
from members.validation import normalize_phone, phone_last4
from shops.errors import DomainError
from shops.models import Shop, Store
from shops.services.events import emit_event
from shops.tenancy import shop_scope

# Fields update_member() accepts; everything else on Member is the system's.
EDITABLE_FIELDS = (
    "name",
    "phone",
    "email",
    "birthday_month",
    "birthday_day",
    "birth_year",
    "gender",
    "language",
    "home_store",
    "referred_by",
    "status",
    "sms_consent",
    "email_consent",
    "notes",
    "custom_fields",
    "external_id",
)
UNIQUE_FIELDS = ("phone", "email", "external_id")
CONSENT_CHANNELS = {"sms_consent": "sms", "email_consent": "email"}


class MemberExists(DomainError):
    """Staff see who already holds the phone, email or external ID."""

    code = "member_exists"
    status_code = 409
    default_message = _("A member with these details already exists.")

    def __init__(self, message=None, *, member: Member, field: str, **kwargs):
        self.member = member
        self.field = field
        if message is None:
            message = _(
                "This %(field)s already belongs to %(member)s (member %(code)s)."
            ) % {
                "field": FIELD_WORDS.get(field, field),
                "member": member.name or member.member_code,
                "code": member.member_code,
            }
        super().__init__(message, fields={field: [message]}, **kwargs)


class RegistrationRefused(DomainError):
    """Where anyone may try details (the portal), say nothing about who exists."""

    code = "registration_refused"
    status_code = 409
    default_message = _(
        "We could not register these details. If you are already a member, "
        "sign in instead."
    )


class MemberErased(DomainError):
    code = "member_erased"
    status_code = 409
    default_message = _("This member's personal data was erased; it cannot change.")


FIELD_WORDS = {
    "phone": _("phone number"),
    "email": _("email address"),
    "external_id": _("external ID"),
}


def find_duplicate(
    *, shop: Shop, values: dict, exclude: Member | None = None
) -> tuple[Member, str] | None:
    """The member already holding one of `values`' phone, email or external ID."""
    for field in UNIQUE_FIELDS:
        value = values.get(field)
        if not value:
            continue
        found = Member.objects.filter(shop=shop, **{field: value})
        if exclude is not None:
            found = found.exclude(pk=exclude.pk)
        existing = found.first()
        if existing is not None:
            return existing, field
    return None


def _refuse_duplicate(*, shop, values, exclude=None, reveal=True) -> None:
    duplicate = find_duplicate(shop=shop, values=values, exclude=exclude)
    if duplicate is None:
        return
    if not reveal:
        raise RegistrationRefused()
    existing, field = duplicate
    raise MemberExists(member=existing, field=field)


def _save_guarded(member: Member, *, shop, values, exclude=None, reveal=True, **kw):
    """Save; a racing insert of the same phone/email loses to the constraint."""
    try:
        with transaction.atomic():
            member.save(**kw)
    except IntegrityError:
        _refuse_duplicate(shop=shop, values=values, exclude=exclude, reveal=reveal)
        raise


def member_payload(member: Member) -> dict:
    """What webhooks say about a member."""
    return {
        "id": member.pk,
        "member_code": member.member_code,
        "name": member.name,
        "phone": member.phone,
        "email": member.email,
        "status": member.status,
        "source": member.source,
        "external_id": member.external_id,
        "home_store_id": member.home_store_id,
        "joined_at": member.joined_at.isoformat() if member.joined_at else None,
        "sms_consent": member.sms_consent,
        "email_consent": member.email_consent,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Store | Member):
        return value.pk
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def record_member_change(
    *,
    member: Member,
    action: str,
    changes: dict | None = None,
    acting_user=None,
    actor_label: str = "",
) -> MemberChange:
    """Add a line to `member`'s timeline (tags, purchases and later apps too)."""
    with shop_scope(member.shop):
        entry = MemberChange(
            shop_id=member.shop_id,
            member=member,
            action=action,
            changes={
                k: [_jsonable(v) for v in pair] for k, pair in (changes or {}).items()
            },
            actor=acting_user if acting_user and acting_user.pk else None,
            actor_label=actor_label[:100],
        )
        entry.save()
        return entry


def record_consent_change(*, member, field, granted, source, at) -> None:
    ConsentChange(
        shop_id=member.shop_id,
        member=member,
        channel=CONSENT_CHANNELS[field],
        granted=granted,
        source=(source or "")[:40],
        at=at,
    ).save()


def register_member(
    *,
    shop: Shop,
    phone: str = "",
    name: str = "",
    email: str = "",
    birthday_month: int | None = None,
    birthday_day: int | None = None,
    birth_year: int | None = None,
    gender: str = "",
    language: str = "",
    home_store: Store | None = None,
    source: str,
    referred_by: Member | None = None,
    sms_consent: bool = False,
    email_consent: bool = False,
    consent_source: str | None = None,
    notes: str = "",
    custom_fields: dict | None = None,
    external_id: str = "",
    joined_at: datetime.datetime | None = None,
    acting_user=None,
    actor_label: str = "",
    reveal: bool = True,
) -> Member:
    """A new member of `shop`. Needs a phone or an email.

    A phone, email or external ID that is taken raises `MemberExists` naming
    the member, or with `reveal=False` (the portal) a neutral
    `RegistrationRefused`.
    """
    data = {
        "phone": phone,
        "name": name,
        "email": email,
        "birthday_month": birthday_month,
        "birthday_day": birthday_day,
        "birth_year": birth_year,
        "gender": gender or "",
        "language": language or "",
        "home_store": home_store,
        "source": source,
        "referred_by": referred_by,
        "sms_consent": sms_consent,
        "email_consent": email_consent,
        "notes": notes,
        "custom_fields": custom_fields or {},
        "external_id": external_id,
    }
    with shop_scope(shop), transaction.atomic():
        cleaned = clean_profile(shop=shop, data=data, member=None)
        if not cleaned["phone"] and not cleaned["email"]:
            message = _("Give a phone number or an email address.")
            raise ValidationError({"phone": [message], "email": [message]})
        _refuse_duplicate(shop=shop, values=cleaned, reveal=reveal)
        now = timezone.now()
        member = Member(
            shop=shop,
            member_code=next_code(shop=shop),
            phone_last4=phone_last4(cleaned["phone"]),
            joined_at=joined_at or now,
            **cleaned,
        )
        for field in CONSENT_CHANNELS:
            if cleaned[field]:
                setattr(member, f"{field}_at", now)
        _save_guarded(member, shop=shop, values=cleaned, reveal=reveal)
        for field in CONSENT_CHANNELS:
            if cleaned[field]:
                record_consent_change(
                    member=member,
                    field=field,
                    granted=True,
                    source=consent_source or cleaned["source"],
                    at=now,
                )
        initial = {
            k: [None, v]
            for k, v in cleaned.items()
            if present(v) and v != {} and v is not False
        }
        record_member_change(
            member=member,
            action="created",
            changes=initial,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        emit_event(shop=shop, topic=MEMBER_CREATED, payload=member_payload(member))
    return member


def find_or_register_by_phone(
    *,
    shop: Shop,
    phone: str,
    acting_user=None,
    actor_label: str = "",
    source: str = MemberSource.COUNTER,
    **details: Any,
) -> tuple[Member, bool]:
    """The counter's one step: the member with `phone`, or a new one.

    Returns (member, created). Two clerks typing the same number at once get
    the same member: the unique constraint decides, the loser reads the winner.
    """
    with shop_scope(shop):
        try:
            normalized = normalize_phone(phone, region=shop.country)
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from exc
        existing = Member.objects.filter(shop=shop, phone=normalized).first()
        if existing is not None:
            return existing, False
        try:
            member = register_member(
                shop=shop,
                phone=normalized,
                source=source,
                acting_user=acting_user,
                actor_label=actor_label,
                **details,
            )
        except MemberExists as exc:
            if exc.field != "phone":
                raise
            return exc.member, False
        return member, True


def update_member(
    *,
    member: Member,
    changes: dict,
    acting_user=None,
    actor_label: str = "",
    consent_source: str | None = None,
) -> Member:
    """Change `member`'s profile; only what really changed is audited."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(
            {key: [_("This field cannot be changed here.")] for key in sorted(unknown)}
        )
    shop = member.shop
    with shop_scope(shop), transaction.atomic():
        member = Member.objects.select_for_update().get(shop=shop, pk=member.pk)
        if member.status == MemberStatus.ERASED:
            raise MemberErased()
        cleaned = clean_profile(shop=shop, data=changes, member=member)
        diff = {}
        for field, new in cleaned.items():
            old = getattr(member, field)
            if old != new:
                diff[field] = [old, new]
        if not diff:
            return member
        after = {f: cleaned.get(f, getattr(member, f)) for f in ("phone", "email")}
        if not after["phone"] and not after["email"]:
            message = _("A member needs a phone number or an email address.")
            raise ValidationError({"phone": [message], "email": [message]})
        _refuse_duplicate(
            shop=shop, values={k: v[1] for k, v in diff.items()}, exclude=member
        )
        now = timezone.now()
        for field, (_old, new) in diff.items():
            setattr(member, field, new)
        if "phone" in diff:
            member.phone_last4 = phone_last4(member.phone)
        for field in CONSENT_CHANNELS:
            if field in diff:
                setattr(member, f"{field}_at", now)
                record_consent_change(
                    member=member,
                    field=field,
                    granted=diff[field][1],
                    source=consent_source or actor_label or "staff",
                    at=now,
                )
        _save_guarded(
            member,
            shop=shop,
            values={k: v[1] for k, v in diff.items()},
            exclude=member,
        )
        record_member_change(
            member=member,
            action="updated",
            changes=diff,
            acting_user=acting_user,
            actor_label=actor_label,
        )
        emit_event(
            shop=shop,
            topic=MEMBER_UPDATED,
            payload={**member_payload(member), "changed": sorted(diff)},
        )
    return member
