"""The transactional outbox and the webhooks that ride on it.

A service that changes data calls `emit_event(...)` inside its own
`transaction.atomic()`: the event row commits or rolls back with the change.
After the commit a fast path hands it to Celery; when the broker is away the row
stays pending and the relay (`relay_outbox`, run by beat and by
`manage.py relay_outbox`) hands it over later. The consumer task fans each event
out once (guarded by `processed_at`) into one webhook delivery per endpoint, and
each delivery is claimed before it is sent, so it is sent once at a time.

Later apps add their topics with `register_event_type(topic, description)` and,
when they need to react to an event in the background, a consumer with
`register_event_consumer(topic, func)`.
"""

from .deliveries import (
    claim_delivery,
    enqueue_due_deliveries,
    event_body,
    retry_delay,
    retry_webhook_deliveries,
    send_webhook_delivery,
)
from .endpoints import (
    clean_event_list,
    clean_webhook_url,
    deactivate_webhook_endpoint,
    register_webhook_endpoint,
    send_test_event,
    update_webhook_endpoint,
)
from .outbox import emit_event, emit_events, process_outbox_event, relay_outbox
from .registry import (
    ALL_EVENTS,
    EVENT_TYPES,
    TEST_TOPIC,
    event_type_choices,
    register_event_consumer,
    register_event_type,
)

__all__ = [
    "ALL_EVENTS",
    "EVENT_TYPES",
    "TEST_TOPIC",
    "claim_delivery",
    "clean_event_list",
    "clean_webhook_url",
    "deactivate_webhook_endpoint",
    "emit_event",
    "emit_events",
    "enqueue_due_deliveries",
    "event_body",
    "event_type_choices",
    "process_outbox_event",
    "register_event_consumer",
    "register_event_type",
    "register_webhook_endpoint",
    "relay_outbox",
    "retry_delay",
    "retry_webhook_deliveries",
    "send_test_event",
    "send_webhook_delivery",
    "update_webhook_endpoint",
]
