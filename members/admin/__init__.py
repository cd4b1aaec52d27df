"""Admin registrations of the members app; each module registers its own models."""

from . import imports, members, purchases, tags  # noqa: F401
