"""Checks and normalisation of member data, shared by every way in.

Pure functions: they read nothing but their arguments (and, for custom
fields, the shop's field definitions) and raise Django `ValidationError`
with a message a shop owner understands. Services call them before they
write; forms and serializers need not repeat them.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import CustomField, CustomFieldType

MIN_BIRTH_YEAR = 1900


def normalize_phone(raw: str, *, region: str) -> str:
    """`raw` as E.164 (+8613800138000); a local number is read in `region`."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _("“%(value)s” is not a phone number."),
            code="invalid_phone",
            params={"value": raw},
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("“%(value)s” is not a valid phone number."),
            code="invalid_phone",
            params={"value": raw},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_last4(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits[-4:]


def normalize_email(raw: str) -> str:
    """`raw` trimmed and lower-cased, refused when it is not an address."""
    text = (raw or "").strip().lower()
    if not text:
        raise ValidationError(_("Enter an email address."), code="required")
    try:
        validate_email(text)
    except ValidationError as exc:
        raise ValidationError(
            _("“%(value)s” is not an email address."),
            code="invalid_email",
            params={"value": raw},
        ) from exc
    if len(text) > 254:
        raise ValidationError(_("This email address is too long."), code="invalid")
    return text


def validate_birthday(*, month: Any, day: Any, year: Any = None) -> None:
    """Refuse dates that cannot be a birthday. Month and day come together."""
    if month in (None, "") and day in (None, ""):
        if year not in (None, ""):
            raise ValidationError(
                {"birthday_month": _("Give the month and day with the year.")}
            )
        return
    if month in (None, "") or day in (None, ""):
        field = "birthday_day" if month not in (None, "") else "birthday_month"
        raise ValidationError({field: _("Give both the month and the day.")})
    try:
        month, day = int(month), int(day)
        year = None if year in (None, "") else int(year)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            {"birthday_month": _("The birthday must be given in numbers.")}
        ) from exc
    if not 1 <= month <= 12:
        raise ValidationError({"birthday_month": _("Months go from 1 to 12.")})
    if year is not None:
        this_year = timezone.now().year
        if year < MIN_BIRTH_YEAR or year > this_year:
            raise ValidationError(
                {
                    "birth_year": _(
                        "The birth year must be between %(first)s and %(last)s."
                    )
                    % {"first": MIN_BIRTH_YEAR, "last": this_year}
                }
            )
    # 2000 is a leap year: without a year, 29 February is a real birthday.
    try:
        born = datetime.date(year if year is not None else 2000, month, day)
    except ValueError as exc:
        raise ValidationError(
            {"birthday_day": _("There is no such day in that month.")}
        ) from exc
    if year is not None and born > timezone.localdate():
        raise ValidationError({"birth_year": _("The birthday is in the future.")})


def _clean_value(definition: CustomField, value: Any) -> Any:
    kind = definition.field_type
    if kind == CustomFieldType.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError(_("Enter text."))
        text = str(value).strip()
        if len(text) > 500:
            raise ValidationError(_("Keep this under 500 characters."))
        return text
    if kind == CustomFieldType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError(_("Enter a number."))
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise ValidationError(_("Enter a number.")) from exc
        if not number.is_finite():
            raise ValidationError(_("Enter a number."))
        # JSON keeps numbers; integers stay integers so they read back as typed.
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomFieldType.DATE:
        if isinstance(value, datetime.date):
            return value.isoformat()
        try:
            return datetime.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError as exc:
            raise ValidationError(_("Enter a date like 2024-05-31.")) from exc
    if kind == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "yes", "1", "y", "是"}:
            return True
        if text in {"false", "no", "0", "n", "否"}:
            return False
        raise ValidationError(_("Enter yes or no."))
    if kind == CustomFieldType.CHOICE:
        text = str(value).strip()
        choices = [str(c) for c in definition.choices or []]
        if text not in choices:
            raise ValidationError(
                _("Choose one of: %(choices)s."), params={"choices": ", ".join(choices)}
            )
        return text
    raise ValidationError(_("This field has an unknown type."))


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def clean_custom_fields(*, shop, values: dict | None, partial: bool = False) -> dict:
    """`values` checked against `shop`'s custom fields, typed for JSON.

    Unknown keys are refused. Empty values are dropped; a required field
    must have a value unless `partial` (an update that leaves it as it is).
    Errors are keyed `custom_fields.<key>`.
    """
    values = values or {}
    if not isinstance(values, dict):
        raise ValidationError(
            {"custom_fields": _("Custom fields must be given as key and value pairs.")}
        )
    definitions = {d.key: d for d in CustomField.objects.filter(shop=shop)}
    errors: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"custom_fields.{key}"] = _(
                "“%(key)s” is not one of this shop's custom fields."
            ) % {"key": key}
            continue
        if _is_empty(value):
            continue
        try:
            cleaned[key] = _clean_value(definition, value)
        except ValidationError as exc:
            errors[f"custom_fields.{key}"] = exc.messages[0]
    for key, definition in definitions.items():
        if not definition.required or key in cleaned:
            continue
        if partial and key not in values:
            continue
        errors.setdefault(
            f"custom_fields.{key}",
            _("%(label)s is required.") % {"label": definition.label},
        )
    if errors:
        raise ValidationError(errors)
    return cleaned
