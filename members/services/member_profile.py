"""Checking a member's profile as a whole: every field the services accept,
normalised, with all errors at once keyed by field (and `custom_fields.<key>`).
Used by register_member and update_member (members.services.members)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.models import CustomField, Gender, Member, MemberSource, MemberStatus
from members.validation import (
    clean_custom_fields,
    normalize_email,
    normalize_phone,
    validate_birthday,
)
from shops.models import Shop, Store


def present(value: Any) -> bool:
    return value not in (None, "")


def clean_choice(value: str, choices, field: str) -> str:
    value = (value or "").strip()
    if value not in {c[0] for c in choices}:
        raise ValidationError(
            {field: _("“%(value)s” is not an option.") % {"value": value}}
        )
    return value


def clean_profile(*, shop: Shop, data: dict, member: Member | None) -> dict:
    """`data` checked and normalised; errors keyed by field, all at once."""
    errors: dict[str, list] = {}
    cleaned: dict[str, Any] = {}

    def check(field, func):
        try:
            cleaned[field] = func(data[field])
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.messages)

    text_limits = {"name": 100, "notes": 5000, "external_id": 64}
    for field, limit in text_limits.items():
        if field in data:
            value = str(data[field] or "").strip()
            if len(value) > limit:
                errors[field] = [
                    _("Keep this under %(limit)s characters.") % {"limit": limit}
                ]
            cleaned[field] = value
    if "phone" in data:
        check(
            "phone",
            lambda v: normalize_phone(v, region=shop.country) if present(v) else "",
        )
    if "email" in data:
        check("email", lambda v: normalize_email(v) if present(v) else "")
    if "gender" in data:
        check("gender", lambda v: clean_choice(v, Gender.choices, "gender"))
    if "language" in data:
        languages = [("", ""), *settings.LANGUAGES]
        check("language", lambda v: clean_choice(v, languages, "language"))
    if "source" in data:
        check("source", lambda v: clean_choice(v, MemberSource.choices, "source"))
    if "status" in data:
        statuses = [c for c in MemberStatus.choices if c[0] != MemberStatus.ERASED]
        check("status", lambda v: clean_choice(v, statuses, "status"))
    for field in ("sms_consent", "email_consent"):
        if field in data:
            if not isinstance(data[field], bool):
                errors[field] = [_("Say yes or no.")]
            cleaned[field] = data[field]
    if "home_store" in data:
        store = data["home_store"]
        if store is not None and (
            not isinstance(store, Store) or store.shop_id != shop.pk
        ):
            errors["home_store"] = [_("Choose one of this shop's stores.")]
        cleaned["home_store"] = store
    if "referred_by" in data:
        referrer = data["referred_by"]
        if referrer is not None and (
            not isinstance(referrer, Member)
            or referrer.shop_id != shop.pk
            or (member is not None and referrer.pk == member.pk)
        ):
            errors["referred_by"] = [_("Choose another member of this shop.")]
        cleaned["referred_by"] = referrer
    birthday_keys = {"birthday_month", "birthday_day", "birth_year"}
    if birthday_keys & data.keys():
        current = {
            key: getattr(member, key) if member else None for key in birthday_keys
        }
        current.update({k: data[k] for k in birthday_keys if k in data})
        current = {k: (None if v == "" else v) for k, v in current.items()}
        try:
            validate_birthday(
                month=current["birthday_month"],
                day=current["birthday_day"],
                year=current["birth_year"],
            )
            for key in birthday_keys:
                if key in data:
                    cleaned[key] = None if current[key] is None else int(current[key])
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    if "custom_fields" in data:
        values = data["custom_fields"] or {}
        if isinstance(values, dict):
            # Given values replace the member's; "" or None clears one. Values
            # of fields the shop has since deleted are dropped, not refused.
            defined = set(
                CustomField.objects.filter(shop=shop).values_list("key", flat=True)
            )
            existing = member.custom_fields if member else {}
            values = {k: v for k, v in existing.items() if k in defined} | values
            values = {k: v for k, v in values.items() if present(v)}
        try:
            cleaned["custom_fields"] = clean_custom_fields(shop=shop, values=values)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return cleaned
