"""Importing members: each row checked with the same validation as registration,
then written a chunk at a time in bulk (member codes reserved in one block,
members, audit lines, consent records and events inserted together, by COPY on
PostgreSQL: see copying.py).

A row matches an existing member by phone, email, external ID or member code.
A match is skipped or updated, as the user chose; a row matching two different
members, or repeating an earlier row of the file, is an error.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members import codes
from members.events import MEMBER_CREATED, MEMBER_UPDATED
from members.models import (
    ConsentChange,
    CustomField,
    ImportKind,
    Member,
    MemberChange,
    MemberSource,
    MemberStatus,
)
from members.validation import (
    normalize_email,
    normalize_phone,
    phone_last4,
    validate_birthday,
)
from shops.models import OutboxEvent, Store
from shops.services.events import outbox

from . import extra
from .base import ChunkResult, RowImporter
from .copying import insert_rows
from .fields import (
    CUSTOM_PREFIX,
    MEMBER_KEYS,
    parse_birthday,
    parse_bool,
    parse_choice,
    parse_datetime,
    parse_gender,
)
from .reading import cell_text

CONSENT_CHANNELS = {"sms_consent": "sms", "email_consent": "email"}
STATUS_ALIASES = {
    "正常": MemberStatus.ACTIVE, "有效": MemberStatus.ACTIVE,
    "启用": MemberStatus.ACTIVE, "停用": MemberStatus.INACTIVE,
    "无效": MemberStatus.INACTIVE, "冻结": MemberStatus.BLOCKED,
    "黑名单": MemberStatus.BLOCKED,
}  # fmt: skip
LANGUAGE_ALIASES = {
    "中文": "zh-hans", "简体中文": "zh-hans", "zh": "zh-hans", "zh-cn": "zh-hans",
    "英文": "en", "english": "en",
}  # fmt: skip
TEXT_LIMITS = {"name": 100, "member_code": 16, "external_id": 64, "notes": 5000}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class MemberImporter(RowImporter):
    key_fields = MEMBER_KEYS
    kind = ImportKind.MEMBERS

    def setup(self) -> None:
        self.member_defaults = {
            f.attname: f.get_default()
            for f in Member._meta.concrete_fields
            if not f.primary_key
        }
        self.region = self.shop.country
        self.custom = {cf.key: cf for cf in CustomField.objects.filter(shop=self.shop)}
        self.stores: dict[str, int] = {}
        for pk, code, name in Store.objects.values_list("pk", "code", "name"):
            self.stores.setdefault(name.strip().lower(), pk)
            self.stores[code.lower()] = pk
        self.update_duplicates = self.options.get("duplicates") == "update"

    # Reading one row ---------------------------------------------------------

    def parse_cell(self, field: str, raw: Any, data: dict) -> None:
        text = cell_text(raw)
        if field == "phone":
            data["phone"] = normalize_phone(text, region=self.region)
        elif field == "email":
            data["email"] = normalize_email(text)
        elif field in TEXT_LIMITS:
            if len(text) > TEXT_LIMITS[field]:
                raise ValidationError(
                    _("Keep this under %(limit)s characters.")
                    % {"limit": TEXT_LIMITS[field]}
                )
            data[field] = text.upper() if field == "member_code" else text
        elif field == "birthday":
            month, day, year = parse_birthday(raw)
            validate_birthday(month=month, day=day, year=year)
            data.update(birthday_month=month, birthday_day=day, birth_year=year)
        elif field == "gender":
            data["gender"] = parse_gender(raw)
        elif field == "joined_at":
            data["joined_at"] = parse_datetime(raw, zone=self.shop.zone)
        elif field == "home_store":
            store_id = self.stores.get(text.lower())
            if store_id is None:
                raise ValidationError(
                    _("There is no store “%(value)s”.") % {"value": text}
                )
            data["home_store_id"] = store_id
        elif field == "language":
            data["language"] = parse_choice(
                raw, choices=settings.LANGUAGES, aliases=LANGUAGE_ALIASES
            )
        elif field == "status":
            choices = [c for c in MemberStatus.choices if c[0] != MemberStatus.ERASED]
            data["status"] = parse_choice(raw, choices=choices, aliases=STATUS_ALIASES)
        elif field in CONSENT_CHANNELS:
            data[field] = parse_bool(raw)
        elif field.startswith(CUSTOM_PREFIX):
            key = field.removeprefix(CUSTOM_PREFIX)
            definition = self.custom.get(key)
            if definition is None:
                raise ValidationError(_("This custom field no longer exists."))
            # The single-value check of members.validation, with the field
            # definitions read once per import instead of once per row.
            from members.validation import _clean_value

            data.setdefault("custom_fields", {})[key] = _clean_value(definition, raw)

    # Deciding and writing a chunk ---------------------------------------------

    def existing_for(self, parsed: list[tuple[int, dict]]) -> dict[str, dict]:
        query = Q()
        for key in self.key_fields:
            values = {data[key] for _n, data in parsed if data.get(key)}
            if values:
                query |= Q(**{f"{key}__in": values})
        index: dict[str, dict] = {key: {} for key in self.key_fields}
        if not query:
            return index
        for member in Member.objects.filter(query).exclude(status=MemberStatus.ERASED):
            for key in self.key_fields:
                value = getattr(member, key)
                if value:
                    index[key][value] = member
        return index

    def missing_required(self, data: dict) -> list[tuple[str, str]]:
        errors = []
        if not (data.get("phone") or data.get("email")):
            errors.append(
                (self.header_for("phone", "email"),
                 _("A new member needs a phone number or an email address."))
            )  # fmt: skip
        given = data.get("custom_fields", {})
        for key, definition in self.custom.items():
            if definition.required and key not in given:
                errors.append(
                    (self.header_for(f"{CUSTOM_PREFIX}{key}") or definition.label,
                     _("%(label)s is required.") % {"label": definition.label})
                )  # fmt: skip
        return errors

    def run_chunk(self, rows, *, write: bool) -> ChunkResult:
        result = ChunkResult()
        parsed = self.parse_rows(rows, result)
        # Other apps' columns (opening points...): shown, then written by them.
        extras = {n: data.pop(extra.EXTRA) for n, data in parsed if extra.EXTRA in data}
        index = self.existing_for(parsed)
        to_create: list[tuple[int, dict]] = []
        to_update: list[tuple[int, Member, dict]] = []
        for number, data in parsed:
            if self.repeats_earlier_row(number, data, result):
                continue
            matches = {
                index[key][data[key]].pk: index[key][data[key]]
                for key in self.key_fields
                if data.get(key) and data[key] in index[key]
            }
            if len(matches) > 1:
                codes_found = ", ".join(m.member_code for m in matches.values())
                result.error(
                    number,
                    self.header_for(*self.key_fields),
                    _("This row matches more than one member (%(codes)s).")
                    % {"codes": codes_found},
                )
            elif matches:
                member = next(iter(matches.values()))
                if self.update_duplicates:
                    to_update.append((number, member, data))
                else:
                    result.skip(number, data, member.member_code)
            else:
                problems = self.missing_required(data)
                for column, message in problems:
                    result.error(number, column, message)
                if not problems:
                    to_create.append((number, data))
        result.created = len(to_create)
        for number, data in to_create:
            result.show(number, "create", {**data, **extras.get(number, {})})
        changed, extra_only = [], []
        for number, member, data in to_update:
            if diff := self.apply(member, data):
                changed.append((number, member, diff))
            elif number in extras:
                extra_only.append((number, member))
            else:
                continue
            result.show(
                number,
                "update",
                {"member_code": member.member_code, **extras.get(number, {})},
            )
        result.updated = len(changed) + len(extra_only)
        result.skipped += len(to_update) - result.updated
        if write:
            ids = self.write(to_create, changed)
            if extras:
                written = {
                    **{n: pk for pk, (n, _d) in zip(ids, to_create, strict=True)},
                    **{n: m.pk for n, m, _d in changed},
                    **{n: m.pk for n, m in extra_only},
                }
                extra.write_rows(
                    self.kind,
                    shop=self.shop,
                    rows=[(written[n], v) for n, v in extras.items() if n in written],
                    job_id=self.job_id,
                    acting_user=self.acting_user,
                    actor_label=self.actor_label,
                )
        return result

    def apply(self, member: Member, data: dict) -> dict:
        """Set `data` on `member`; returns {field: [old, new]} of what changed."""
        diff = {}
        for field, value in data.items():
            if field == "member_code":
                continue  # a member's code is never changed by an import
            if field == "custom_fields":
                merged = {**member.custom_fields, **value}
                if merged != member.custom_fields:
                    diff[field] = [member.custom_fields, merged]
                    member.custom_fields = merged
                continue
            old = getattr(member, field)
            if old != value:
                diff[field] = [_jsonable(old), _jsonable(value)]
                setattr(member, field, value)
        if "phone" in diff:
            member.phone_last4 = phone_last4(member.phone)
        return diff

    def write(self, to_create, changed) -> list[int]:
        """Write the chunk; the new members' ids, in the order of `to_create`."""
        now = timezone.now()
        shop_id, actor_id = self.shop.pk, getattr(self.acting_user, "pk", None)
        new_codes = iter(
            codes.next_codes(
                shop=self.shop,
                count=sum(1 for _n, d in to_create if not d.get("member_code")),
            )
            if any(not d.get("member_code") for _n, d in to_create)
            else []
        )
        # Rows of column values, not model instances: on PostgreSQL they go
        # straight into COPY (see copying.py), which keeps a large import fast.
        rows = []
        for _number, data in to_create:
            row = {**self.member_defaults, "custom_fields": {}}
            row.update((k, v) for k, v in data.items() if k not in CONSENT_CHANNELS)
            row.update(
                shop_id=shop_id,
                source=MemberSource.IMPORT,
                joined_at=data.get("joined_at", now),
                created_at=now,
                updated_at=now,
            )
            if not row["member_code"]:
                row["member_code"] = next(new_codes)
            row["phone_last4"] = phone_last4(row["phone"]) if row["phone"] else ""
            for field in CONSENT_CHANNELS:
                if field in data:
                    row[field] = data[field]
                    row[f"{field}_at"] = now
            rows.append(row)
        ids = insert_rows(Member, rows, with_ids=True)
        changes = [
            {
                "shop_id": shop_id,
                "member_id": member_id,
                "at": now,
                "actor_id": actor_id,
                "actor_label": self.actor_label,
                "action": "imported",
                "changes": {k: [None, _jsonable(v)] for k, v in data.items()},
            }
            for member_id, (_n, data) in zip(ids, to_create, strict=True)
        ]
        consents = [
            {
                "shop_id": shop_id,
                "member_id": member_id,
                "channel": channel,
                "granted": data[field],
                "source": "import",
                "at": now,
            }
            for member_id, (_n, data) in zip(ids, to_create, strict=True)
            for field, channel in CONSENT_CHANNELS.items()
            if field in data
        ]
        updated = [member for _n, member, _d in changed]
        if updated:
            fields = {"updated_at", *(f for _n, _m, d in changed for f in d)}
            if "phone" in fields:
                fields.add("phone_last4")
            for _n, member, diff in changed:
                member.updated_at = now
                for field, channel in CONSENT_CHANNELS.items():
                    if field in diff:
                        setattr(member, f"{field}_at", now)
                        fields.add(f"{field}_at")
                        consents.append(
                            {
                                "shop_id": shop_id,
                                "member_id": member.pk,
                                "channel": channel,
                                "granted": diff[field][1],
                                "source": "import",
                                "at": now,
                            }
                        )
                changes.append(
                    {
                        "shop_id": shop_id,
                        "member_id": member.pk,
                        "at": now,
                        "actor_id": actor_id,
                        "actor_label": self.actor_label,
                        "action": "updated",
                        "changes": diff,
                    }
                )
            Member.objects.bulk_update(updated, sorted(fields), batch_size=500)
        insert_rows(MemberChange, changes)
        insert_rows(ConsentChange, consents)
        from members.services.members import member_payload

        # One event per member, as registration sends, so that an integrator
        # mirroring the member list stays complete; written in bulk (as
        # emit_events does) and handed to the queue by one relay run per chunk.
        self.emit(
            MEMBER_CREATED,
            [
                member_payload(SimpleNamespace(pk=member_id, **row))
                for member_id, row in zip(ids, rows, strict=True)
            ],
            now=now,
        )
        self.emit(
            MEMBER_UPDATED,
            [{**member_payload(m), "changed": sorted(d)} for _n, m, d in changed],
            now=now,
        )
        return ids

    def emit(self, topic: str, payloads: list[dict], *, now) -> None:
        if not payloads:
            return
        insert_rows(
            OutboxEvent,
            [
                {
                    "shop_id": self.shop.pk,
                    "topic": topic,
                    "payload": p,
                    "created_at": now,
                }
                for p in payloads
            ],
        )
        transaction.on_commit(outbox.kick_relay, robust=True)
