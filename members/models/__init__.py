from .jobs import ImportJob, ImportKind, ImportStatus
from .member import (
    ConsentChange,
    CustomField,
    CustomFieldType,
    Gender,
    Member,
    MemberChange,
    MemberCodeSequence,
    MemberSource,
    MemberStatus,
)
from .purchase import (
    Purchase,
    PurchaseChannel,
    PurchaseLine,
    PurchaseStatus,
    Refund,
)
from .tags import MemberTag, Tag, TagRule, TagRuleKind, TagSource

__all__ = [
    "ConsentChange",
    "CustomField",
    "CustomFieldType",
    "Gender",
    "ImportJob",
    "ImportKind",
    "ImportStatus",
    "Member",
    "MemberChange",
    "MemberCodeSequence",
    "MemberSource",
    "MemberStatus",
    "MemberTag",
    "Purchase",
    "PurchaseChannel",
    "PurchaseLine",
    "PurchaseStatus",
    "Refund",
    "Tag",
    "TagRule",
    "TagRuleKind",
    "TagSource",
]
