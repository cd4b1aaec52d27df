"""Quotes over random rates, orders and balances (hypothesis): the most points an
order may use is always a whole number of cents, within the member's points,
the shop's share and minimum, and no more points would fit."""

from decimal import Decimal
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from points.models import PointsPolicy
from points.services import cash

rates = st.tuples(
    st.integers(min_value=1, max_value=500),  # cash_points
    st.integers(min_value=1, max_value=10_000),  # cash_value in cents
)
shares = st.integers(min_value=0, max_value=10_000).map(lambda n: Decimal(n) / 100)
totals = st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n) / 100)


def quote_with(*, rate, share, minimum, have, total, points=None):
    policy = PointsPolicy(
        cash_points=rate[0],
        cash_value=Decimal(rate[1]) / 100,
        cash_min_points=minimum,
        cash_max_share=share,
    )
    with mock.patch.object(cash, "spendable", return_value=have):
        return cash.quote(
            member=None,
            order_total=total,
            points=points,
            policy=policy,
            account=object(),
        )


@settings(max_examples=300, deadline=None)
@given(
    rate=rates,
    share=shares,
    minimum=st.integers(min_value=0, max_value=5000),
    have=st.integers(min_value=0, max_value=10**7),
    total=totals,
)
def test_the_most_points_fit_every_rule_and_no_more_would(
    rate, share, minimum, have, total
):
    figures = quote_with(
        rate=rate, share=share, minimum=minimum, have=have, total=total
    )
    points, cents = rate
    step = figures.step
    cap_cents = total * share  # the share of the order, in cents

    def worth(n):  # in cents, exactly
        return Decimal(n * cents) / points

    best = figures.max_points
    assert best % step == 0
    assert best <= have
    assert worth(best) <= cap_cents
    assert worth(best) == worth(best).to_integral_value()  # whole cents
    assert figures.max_value == worth(best) / 100
    assert best == 0 or best >= minimum
    # One more step would break a rule, or nothing reaches the minimum.
    bigger = best + step
    assert bigger > have or worth(bigger) > cap_cents or best == 0
    if best == 0:
        largest = min(have, int(cap_cents * points // cents))
        largest -= largest % step
        assert largest < max(minimum, step)
    else:
        asked = quote_with(
            rate=rate, share=share, minimum=minimum, have=have, total=total, points=best
        )
        assert (asked.value, asked.allowed) == (figures.max_value, True)
