"""Tier services: the ladder and policy, figures, evaluation on a purchase,
manual tiers, progress, period ends and set-based recalculation.

Importing the package registers the `tier.changed` webhook event type."""

from . import events  # noqa: F401  (registers tier.changed)
