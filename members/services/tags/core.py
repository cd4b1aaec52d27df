"""Tags themselves, and tagging one member by hand (audited on the timeline)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from members.models import (
    Member,
    MemberChange,
    MemberTag,
    Tag,
    TagSource,
)
from shops.models import Shop

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
TAG_ADDED, TAG_REMOVED = "tag_added", "tag_removed"


# Tags ------------------------------------------------------------------------


def clean_tag(*, shop: Shop, name: str, color: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Give the tag a name.")
    elif len(name) > 50 or any(ord(c) < 32 for c in name):
        errors["name"] = _("Use at most 50 characters, on one line.")
    elif (
        Tag.objects.filter(shop=shop, name__iexact=name).exclude(pk=exclude_pk).exists()
    ):
        errors["name"] = _("There is already a tag named “%(name)s”.") % {"name": name}
    if not COLOR.match(color or ""):
        errors["color"] = _("Choose a colour like #22c55e.")
    if errors:
        raise ValidationError(errors)
    return name


@transaction.atomic
def create_tag(
    *,
    shop: Shop,
    name: str,
    color: str = "#64748b",
    description: str = "",
    acting_user=None,
) -> Tag:
    name = clean_tag(shop=shop, name=name, color=color)
    return Tag.objects.create(
        shop=shop, name=name, color=color.lower(), description=description or ""
    )


@transaction.atomic
def update_tag(
    *,
    tag: Tag,
    name: str | None = None,
    color: str | None = None,
    description: str | None = None,
    acting_user=None,
) -> Tag:
    """Rename, recolour or re-describe a tag."""
    name = clean_tag(
        shop=tag.shop,
        name=tag.name if name is None else name,
        color=tag.color if color is None else color,
        exclude_pk=tag.pk,
    )
    tag.name = name
    if color is not None:
        tag.color = color.lower()
    if description is not None:
        tag.description = description
    tag.save(update_fields=["name", "color", "description"])
    return tag


@transaction.atomic
def delete_tag(*, tag: Tag, acting_user=None) -> None:
    """Delete the tag, its rules and every member's row of it."""
    MemberTag.objects.filter(shop=tag.shop, tag=tag).delete()
    tag.delete()


# One member ------------------------------------------------------------------


def _record_change(*, member, action: str, changes: dict, acting_user, actor_label):
    """The member's timeline entry, through the members service when it is there."""
    try:
        from members.services.members import record_member_change
    except ImportError:  # the members service not landed yet: write the row here
        return MemberChange.objects.create(
            shop_id=member.shop_id,
            member=member,
            actor=acting_user,
            actor_label=actor_label,
            action=action,
            changes=changes,
        )
    return record_member_change(
        member=member,
        action=action,
        changes=changes,
        acting_user=acting_user,
        actor_label=actor_label,
    )


@transaction.atomic
def tag_member(
    *, shop: Shop, member: Member, tag: Tag, acting_user=None, actor_label: str = ""
) -> bool:
    """Tag one member by hand. True when it changed something.

    A row the rules gave becomes a hand-given one, so the rules no longer take
    it away.
    """
    _same_shop(shop, member, tag)
    row, created = MemberTag.objects.get_or_create(
        shop=shop, member=member, tag=tag, defaults={"source": TagSource.MANUAL}
    )
    if not created:
        if row.source == TagSource.MANUAL:
            return False
        row.source = TagSource.MANUAL
        row.save(update_fields=["source"])
    _record_change(
        member=member,
        action=TAG_ADDED,
        changes={"tags": [None, tag.name]},
        acting_user=acting_user,
        actor_label=actor_label,
    )
    return True


@transaction.atomic
def untag_member(
    *, shop: Shop, member: Member, tag: Tag, acting_user=None, actor_label: str = ""
) -> bool:
    """Take a tag off one member. True when the member had it.

    A tag its rules still give comes back at the next evaluation.
    """
    _same_shop(shop, member, tag)
    deleted, _rows = MemberTag.objects.filter(
        shop=shop, member=member, tag=tag
    ).delete()
    if deleted:
        _record_change(
            member=member,
            action=TAG_REMOVED,
            changes={"tags": [tag.name, None]},
            acting_user=acting_user,
            actor_label=actor_label,
        )
    return bool(deleted)


def _same_shop(shop: Shop, *objects) -> None:
    if any(obj.shop_id != shop.pk for obj in objects):
        raise ValueError("A member or tag of another shop.")
