"""The members app's webhook event types, registered when the app is ready."""

from django.utils.translation import gettext_lazy as _

from shops.services.events import register_event_type

MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
PURCHASE_COMPLETED = "purchase.completed"
PURCHASE_REFUNDED = "purchase.refunded"


def register() -> None:
    register_event_type(MEMBER_CREATED, _("A member joined"))
    register_event_type(MEMBER_UPDATED, _("A member's profile changed"))
    register_event_type(PURCHASE_COMPLETED, _("A purchase was completed"))
    register_event_type(
        PURCHASE_REFUNDED, _("A purchase was refunded, fully or in part")
    )
    __import__("members.tasks.tags").tasks.tags.register_tag_consumers()
