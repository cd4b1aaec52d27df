"""Admin of the tiers app: the ladder and policy editors (with the preview of a
rule change), recalculations with their progress bar, and the member page's
tier panel and manual tier form (see `tiers.registrations`)."""

from . import ladder, member, recalculation  # noqa: F401
