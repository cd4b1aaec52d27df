"""Where higher apps (tiers, points, analytics, marketing) add to the member's
API resource, filters and admin list, so this app never imports them.

    register_member_section(MemberSection(
        name="tier",
        field=lambda: MemberTierSerializer(source="*", read_only=True),
        prefetch=lambda queryset: queryset.prefetch_related(...),
    ))
    register_member_filter("tier", django_filters.NumberFilter(method=...))
    register_member_list_filter(TierListFilter)

Each app registers in its `AppConfig.ready()` (API sections and filters) or in
its admin module (list filters), like the member page's panels
(`members.admin.panels`) and the data export's sections
(`members.services.privacy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MemberSection:
    """A read-only part of the member resource in the API (`GET /members`,
    `GET /members/{id}`): `field()` builds its serializer field (usually a
    serializer with `source="*"`), `prefetch(queryset)` loads what it reads for
    a whole page at once."""

    name: str
    field: Callable
    prefetch: Callable = field(default=lambda queryset: queryset)


MEMBER_SECTIONS: dict[str, MemberSection] = {}
MEMBER_FILTERS: dict = {}
MEMBER_LIST_FILTERS: list = []


def register_member_section(section: MemberSection) -> None:
    MEMBER_SECTIONS[section.name] = section


def register_member_filter(name: str, filter_) -> None:
    """A django-filter filter for `GET /api/v1/members` (and the member
    selectors that use `MemberFilter`). A `method=` filter is looked up on the
    filter itself: pass `method=callable(queryset, name, value)`."""
    from members.filters import MemberFilter

    MEMBER_FILTERS[name] = filter_
    # base_filters: what every new FilterSet copies, and what the OpenAPI
    # schema lists.
    MemberFilter.base_filters[name] = filter_


def register_member_list_filter(list_filter) -> None:
    """A filter for the staff's member list in the admin."""
    if list_filter not in MEMBER_LIST_FILTERS:
        MEMBER_LIST_FILTERS.append(list_filter)


def prefetch_sections(queryset):
    for section in MEMBER_SECTIONS.values():
        queryset = section.prefetch(queryset)
    return queryset
