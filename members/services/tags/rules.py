"""Tag rules: their settings, checked; and keeping rule-given tags true."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import (
    CustomField,
    CustomFieldType,
    MemberSource,
    MemberTag,
    Tag,
    TagRule,
    TagRuleKind,
    TagSource,
)
from members.selectors import tags as selectors
from shops.models import Shop

from .bulk import _ids_sql, _insert_rows
from .core import _same_shop

# Rules -----------------------------------------------------------------------

MAX_DAYS = 3660
RULE_PARAMS = {
    TagRuleKind.MIN_TOTAL_SPENT: ("amount",),
    TagRuleKind.MIN_ORDERS_IN_DAYS: ("orders", "days"),
    TagRuleKind.NO_PURCHASE_IN_DAYS: ("days",),
    TagRuleKind.BIRTHDAY_MONTH: ("month",),
    TagRuleKind.SOURCE_IS: ("source",),
    TagRuleKind.CUSTOM_FIELD_EQUALS: ("key", "value"),
}


def _whole(value, *, low: int, high: int, message) -> int:
    if isinstance(value, bool):
        raise ValidationError(message)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(message) from None
    if not low <= number <= high:
        raise ValidationError(message)
    return number


def _custom_value(field: CustomField, value):
    """The value as the member's custom field stores it, or refuse it."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValidationError(_("Enter the value to compare with."))
    kind = field.field_type
    if kind == CustomFieldType.NUMBER:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError(
                _("“%(field)s” holds numbers: enter a number.") % {"field": field.label}
            ) from None
        if not number.is_finite():
            raise ValidationError(_("Enter a number."))
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomFieldType.BOOLEAN:
        answers = {
            "true": True,
            "yes": True,
            "1": True,
            "false": False,
            "no": False,
            "0": False,
        }
        if text.lower() not in answers:
            raise ValidationError(
                _("“%(field)s” is yes or no: enter yes or no.") % {"field": field.label}
            )
        return answers[text.lower()]
    if kind == CustomFieldType.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError(_("Enter a date like 2025-05-31.")) from None
    if kind == CustomFieldType.CHOICE and text not in [str(c) for c in field.choices]:
        raise ValidationError(
            _("Choose one of: %(choices)s.")
            % {"choices": ", ".join(map(str, field.choices))}
        )
    return text


def clean_rule_params(*, shop: Shop, kind: str, params) -> dict:
    """The rule's parameters, checked and normalised; errors name each parameter."""
    if kind not in RULE_PARAMS:
        raise ValidationError({"kind": _("Choose a kind of rule.")})
    if not isinstance(params, dict):
        raise ValidationError({"params": _("Give the rule's settings.")})
    errors, clean = {}, {}
    for name in RULE_PARAMS[kind]:
        value = params.get(name)
        try:
            clean[name] = _clean_param(shop, name, value, clean)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return clean


def _clean_param(shop: Shop, name: str, value, clean: dict):
    if name == "amount":
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
        if value is None or isinstance(value, bool) or amount is None:
            raise ValidationError(_("Enter an amount, e.g. 1000."))
        if not amount.is_finite() or amount < 0 or amount >= 10**12:
            raise ValidationError(_("Enter an amount of 0 or more."))
        return str(amount.quantize(Decimal("0.01")))
    if name == "orders":
        return _whole(
            value,
            low=1,
            high=100_000,
            message=_("Enter a number of orders of 1 or more."),
        )
    if name == "days":
        return _whole(
            value,
            low=1,
            high=MAX_DAYS,
            message=_("Enter a number of days from 1 to %(max)s.") % {"max": MAX_DAYS},
        )
    if name == "month":
        return _whole(
            value,
            low=0,
            high=12,
            message=_("Enter a month from 1 to 12, or 0 for the current month."),
        )
    if name == "source":
        if value not in MemberSource.values:
            raise ValidationError(_("Choose one of the ways members join."))
        return value
    if name == "key":
        field = CustomField.objects.filter(shop=shop, key=str(value or "")).first()
        if field is None:
            raise ValidationError(_("Choose one of the shop's custom fields."))
        clean["_field"] = field
        return field.key
    if name == "value":
        field = clean.pop("_field", None)
        if field is None:
            raise ValidationError(_("Choose the custom field first."))
        return _custom_value(field, value)
    raise ValueError(name)


@transaction.atomic
def create_tag_rule(
    *,
    shop: Shop,
    tag: Tag,
    kind: str,
    params: dict,
    is_active: bool = True,
    acting_user=None,
) -> TagRule:
    _same_shop(shop, tag)
    params = clean_rule_params(shop=shop, kind=kind, params=params)
    return TagRule.objects.create(
        shop=shop, tag=tag, kind=kind, params=params, is_active=is_active
    )


@transaction.atomic
def update_tag_rule(
    *,
    rule: TagRule,
    kind: str | None = None,
    params: dict | None = None,
    is_active: bool | None = None,
    acting_user=None,
) -> TagRule:
    rule.kind = kind or rule.kind
    if params is not None or kind is not None:
        rule.params = clean_rule_params(
            shop=rule.shop,
            kind=rule.kind,
            params=rule.params if params is None else params,
        )
    if is_active is not None:
        rule.is_active = is_active
    rule.save(update_fields=["kind", "params", "is_active"])
    return rule


@transaction.atomic
def delete_tag_rule(*, rule: TagRule, acting_user=None) -> None:
    rule.delete()


def apply_tag_rules(
    *,
    shop: Shop,
    tag: Tag | None = None,
    member_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> dict:
    """Make rule-given tags true for the shop (or one tag, or some members).

    A few statements per tag, whatever the number of members. Safe to run
    twice: the second run changes nothing. Returns {"added": n, "removed": m}.
    """
    now = now or timezone.now()
    member_ids = None if member_ids is None else [int(i) for i in member_ids]
    added = removed = 0
    with transaction.atomic():
        for each in selectors.tags_to_evaluate(shop=shop, tag=tag):
            rules = selectors.active_rules(each)
            matching = selectors.members_matching_rules(
                shop=shop, rules=rules, now=now, member_ids=member_ids
            )
            if rules:
                ids_sql, ids_params = _ids_sql(matching, shop)
                added += _insert_rows(
                    shop=shop,
                    tag=each,
                    ids_sql=ids_sql,
                    ids_params=ids_params,
                    source=TagSource.RULE,
                    now=now,
                    promote=False,
                )
            stale = MemberTag.objects.filter(shop=shop, tag=each, source=TagSource.RULE)
            if member_ids is not None:
                stale = stale.filter(member_id__in=member_ids)
            if rules:
                stale = stale.exclude(Exists(matching.filter(pk=OuterRef("member_id"))))
            removed += stale.delete()[0]
            TagRule.objects.filter(shop=shop, tag=each, is_active=True).update(
                last_run_at=now
            )
    return {"added": added, "removed": removed}
