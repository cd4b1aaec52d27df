"""Tasks of the points app; beat names are in config/settings.py."""

from .bonuses import *  # noqa: F403
from .expiry import *  # noqa: F403
