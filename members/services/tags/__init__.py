"""Tags: shop-defined labels on members, set by hand or kept true by rules.

Bulk writes take a QUERYSET of members (the admin's filtered list, possibly a
million rows) and run as a few set-based statements: INSERT ... SELECT ... ON
CONFLICT and DELETE with a subquery, whatever the number of members. Raw SQL
is not covered by the tenancy guard, so every statement here names the shop.

Rules: a tag's rule members are those meeting ALL its active rules
(`members.selectors.tags`). `apply_tag_rules` adds the missing rows (source
"rule") and deletes rule rows that no longer match; rows added by hand are
never removed by rules, and a hand-added row stays "by hand".

Long lists (`BACKGROUND_FROM` members and more) are tagged by a worker:
`queue_tag_job` records a `TagJob`, the task runs `run_tag_job`.
"""

from .bulk import add_tag, move_tag, remove_tag
from .core import (
    clean_tag,
    create_tag,
    delete_tag,
    tag_member,
    untag_member,
    update_tag,
)
from .jobs import BACKGROUND_FROM, queue_tag_job, run_tag_job
from .rules import (
    RULE_PARAMS,
    apply_tag_rules,
    clean_rule_params,
    create_tag_rule,
    delete_tag_rule,
    update_tag_rule,
)

__all__ = [
    "BACKGROUND_FROM",
    "RULE_PARAMS",
    "add_tag",
    "apply_tag_rules",
    "clean_rule_params",
    "clean_tag",
    "create_tag",
    "create_tag_rule",
    "delete_tag",
    "delete_tag_rule",
    "move_tag",
    "queue_tag_job",
    "remove_tag",
    "run_tag_job",
    "tag_member",
    "untag_member",
    "update_tag",
    "update_tag_rule",
]
