from .ledger import (
    EntryKind,
    EntrySource,
    LotConsumption,
    PointsAccount,
    PointsEntry,
    PointsLot,
)
from .rewards import Redemption, RedemptionKind, RedemptionStatus, Reward
from .rules import (
    EarningRule,
    ExpiryMode,
    PointsPolicy,
    RefundPolicy,
    Rounding,
    RuleKind,
)

__all__ = [
    "EarningRule",
    "EntryKind",
    "EntrySource",
    "ExpiryMode",
    "LotConsumption",
    "PointsAccount",
    "PointsEntry",
    "PointsLot",
    "PointsPolicy",
    "Redemption",
    "RedemptionKind",
    "RedemptionStatus",
    "RefundPolicy",
    "Reward",
    "Rounding",
    "RuleKind",
]
