"""Admin registrations of the shops app; each module registers its own models."""

from . import platform, tenants  # noqa: F401
