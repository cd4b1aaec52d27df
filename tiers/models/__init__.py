from .ladder import (
    Basis,
    DowngradeRule,
    Tier,
    TierPolicy,
    Window,
)
from .state import (
    ManualMode,
    MemberTier,
    RecalculationStatus,
    TierChange,
    TierChangeReason,
    TierRecalculation,
)

__all__ = [
    "Basis",
    "DowngradeRule",
    "ManualMode",
    "MemberTier",
    "RecalculationStatus",
    "Tier",
    "TierChange",
    "TierChangeReason",
    "TierPolicy",
    "TierRecalculation",
    "Window",
]
