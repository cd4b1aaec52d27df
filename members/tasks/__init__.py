"""Celery tasks of the members app (autodiscovered as `members.tasks`)."""

from .imports import *  # noqa: F403
from .tags import *  # noqa: F403
