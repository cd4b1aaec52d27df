"""TEMPORARY placeholder written by the lead; the points-redeem helper replaces it."""


def return_order_payment(*, purchase, refund=None, acting_user=None, actor_label=""):
    return None
