"""TEMPORARY placeholder written by the lead; the tiers-core helper replaces it."""


def evaluate_member(*, member, reason, purchase=None, acting_user=None, actor_label=""):
    return None
