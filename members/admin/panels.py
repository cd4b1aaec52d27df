"""Panels on the staff's member page, added by each app that has something to show.

    register_member_panel(MemberPanel(
        key="purchases", title=_("Purchases"), order=20,
        template="admin/members/panels/purchases.html",
        context=lambda request, member: {"purchases": ...},
    ))

The member admin renders every panel the staff member's role may see, in
`order`, each template with its `context(request, member)` plus `member`.
Tiers, points and marketing add theirs the same way (registering in their
admin modules), so this app never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shops.admin.base import EVERYONE, role_allows


@dataclass(frozen=True)
class MemberPanel:
    key: str
    title: str
    template: str
    context: Callable = field(default=lambda request, member: {})
    order: int = 100
    roles: frozenset = EVERYONE


MEMBER_PANELS: dict[str, MemberPanel] = {}


def register_member_panel(panel: MemberPanel) -> None:
    MEMBER_PANELS[panel.key] = panel


def panels_for(request, member) -> list[dict]:
    """The panels `request`'s staff member may see, ready to render."""
    shown = []
    for panel in sorted(MEMBER_PANELS.values(), key=lambda p: (p.order, p.key)):
        if role_allows(request, panel.roles):
            context = {"member": member, **panel.context(request, member)}
            shown.append({"panel": panel, "context": context})
    return shown
