"""Admin registrations of the shops app; each module registers its own models."""

from . import (  # noqa: F401
    celery_beat,
    platform,
    tenants,
    webhooks,
)
