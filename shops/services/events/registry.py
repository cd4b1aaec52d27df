"""What events exist, and what runs in the background when one is processed."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext_lazy as _

TEST_TOPIC = "webhook.test"
ALL_EVENTS = "*"

#: topic -> description a shop owner reads when choosing events for an endpoint.
EVENT_TYPES: dict[str, str] = {
    TEST_TOPIC: _("A test event sent from the admin to check an endpoint."),
}

#: (topic or "*", consumer) pairs; each consumer gets the event inside the
#: consumer task's transaction and the event's shop scope.
EVENT_CONSUMERS: list[tuple[str, Callable]] = []


def register_event_type(topic: str, description) -> None:
    """Make `topic` known, so it can be emitted and chosen for webhooks.

    Call it at import time of the app that emits the topic (e.g. in its
    services module), with a translatable description.
    """
    if not topic or topic == ALL_EVENTS or " " in topic:
        raise ValueError(f"Not a usable event type: {topic!r}")
    EVENT_TYPES[topic] = description


def register_event_consumer(topic: str, consumer: Callable) -> None:
    """Run `consumer(event)` once for every processed event of `topic` ("*": all).

    It runs in the consumer task's transaction, so it must be quick and must
    queue slow work with `transaction.on_commit` (or, to be done exactly once,
    be one set-based statement, as `tiers.services.sql.emit_tier_changes`
    is); if it raises, the event is
    processed again later, so it must be safe to run twice.
    """
    if (topic, consumer) not in EVENT_CONSUMERS:
        EVENT_CONSUMERS.append((topic, consumer))


def consumers_for(topic: str) -> list[Callable]:
    return [func for wanted, func in EVENT_CONSUMERS if wanted in (ALL_EVENTS, topic)]


def event_type_choices() -> list[tuple[str, str]]:
    """(topic, label) pairs for a form: all events first, then every known topic."""
    return [(ALL_EVENTS, _("All events")), *sorted(EVENT_TYPES.items())]
