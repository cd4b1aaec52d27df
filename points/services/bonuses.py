"""Bonus points: registration, completed profile, referral, birthday.

Each bonus is given once, by an idempotency key:
- "registration:<member id>" and "profile:<member id>": awarded by the task
  `points.award_signup_bonuses_everywhere` (every few minutes, set-based) to
  members who joined or changed their profile within the look-back window
  (`SIGNUP_LOOKBACK`), so the members app never imports points; the single-
  member functions do the same for one member (e.g. from a later app's flow).
  A rule switched on later does not reward the members who joined before.
- "referral:<new member id>:referrer" / ":referee": both sides, when the new
  member's FIRST purchase completes (called by `earn_for_purchase`), so fake
  sign-ups earn nothing.
- "birthday:<member id>:<year>": members whose birthday is today in the shop's
  time zone (Feb 29 birthdays on Feb 28 in other years) get the birthday rule's
  points plus their tier's birthday gift; set-based per shop, once a year.

A profile is complete with a name, a phone, a birthday (month and day) and a
gender. Only active members get bonuses.

The set-based awards write every row in a fixed number of statements (a temp
table of candidates, then accounts, locks, and one data-modifying CTE for
entries, lots, accounts and `points.earned` events). Raw SQL names the shop in
every statement (the tenancy guard does not see raw SQL).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone

from members.models import Member, MemberStatus
from points import events
from points.models import EntryKind, EntrySource, RuleKind
from points.services import ledger, rules
from shops.services.events.outbox import kick_relay

SIGNUP_LOOKBACK = timedelta(days=3)
ACTOR = "bonus task"


def profile_complete(member) -> bool:
    return bool(
        member.name
        and member.phone
        and member.birthday_month
        and member.birthday_day
        and member.gender
    )


def _award_once(
    *,
    member,
    kind: str,
    source: str,
    key: str,
    reference="",
    acting_user=None,
    actor_label="",
    points=None,
):
    rule = rules.rules_for(member.shop, cached=False).get(kind)
    if points is None:
        points = rule.points if rule is not None else 0
    if points <= 0 or member.status != MemberStatus.ACTIVE:
        return None
    return ledger.credit(
        member=member,
        points=points,
        kind=EntryKind.EARN,
        source=source,
        reference=reference or (f"rule:{rule.pk}" if rule is not None else ""),
        idempotency_key=key,
        acting_user=acting_user,
        actor_label=actor_label,
    )


def award_registration_bonus(*, member, acting_user=None, actor_label=""):
    """The registration rule's points, once per member (None: nothing due)."""
    return _award_once(
        member=member,
        kind=RuleKind.REGISTRATION,
        source=EntrySource.REGISTRATION,
        key=f"registration:{member.pk}",
        acting_user=acting_user,
        actor_label=actor_label,
    )


def award_profile_bonus(*, member, acting_user=None, actor_label=""):
    """The completed-profile rule's points, once per member whose profile is
    complete (None: not complete, or nothing due)."""
    if not profile_complete(member):
        return None
    return _award_once(
        member=member,
        kind=RuleKind.PROFILE,
        source=EntrySource.PROFILE,
        key=f"profile:{member.pk}",
        acting_user=acting_user,
        actor_label=actor_label,
    )


def award_referral_bonus(*, purchase, acting_user=None, actor_label="") -> list:
    """Both sides of a referral, once, when the referred member's first
    purchase completes. Returns the entries written (or replayed)."""
    member = purchase.member
    if member.referred_by_id is None:
        return []
    rule = rules.rules_for(purchase.shop).get(RuleKind.REFERRAL)
    if rule is None or rule.points <= 0:
        return []
    referrer = (
        Member.objects.unscoped()
        .filter(shop_id=purchase.shop_id, pk=member.referred_by_id)
        .first()
    )
    policy = rules.policy_for(purchase.shop)
    written = []
    with transaction.atomic(savepoint=False):  # nothing is raised inside
        for who, side in ((referrer, "referrer"), (member, "referee")):
            if who is None or who.status != MemberStatus.ACTIVE:
                continue
            who.shop = purchase.shop
            points = _capped_referral(who, rule, policy, purchase.shop)
            if points <= 0:
                continue
            try:
                entry = ledger.credit(
                    member=who,
                    points=points,
                    kind=EntryKind.EARN,
                    source=EntrySource.REFERRAL,
                    reason=f"{member.member_code}",
                    reference=f"rule:{rule.pk}",
                    idempotency_key=f"referral:{member.pk}:{side}",
                    acting_user=acting_user,
                    actor_label=actor_label,
                )
            except ledger.IdempotencyConflict:
                continue  # given before (then with other points): once only
            written.append(entry)
    return written


def _capped_referral(member, rule, policy, shop) -> int:
    from points.services.earning import capped_points

    return capped_points(
        rule.points, member=member, rule=rule, policy=policy, shop=shop
    )


# --- set-based ------------------------------------------------------------------

_CANDIDATES = (
    "CREATE TEMP TABLE IF NOT EXISTS points_bonus_candidates ("
    "member_id bigint NOT NULL, points bigint NOT NULL, key varchar(128) NOT NULL,"
    " source varchar(16) NOT NULL, reference varchar(64) NOT NULL,"
    " reason varchar(200) NOT NULL) ON COMMIT DELETE ROWS"
)

_ACCOUNTS = """
INSERT INTO points_pointsaccount
    (shop_id, member_id, balance, pending, lifetime_earned, redeemed, expired,
     updated_at)
SELECT DISTINCT %(shop)s, c.member_id, 0, 0, 0, 0, 0, %(now)s
  FROM points_bonus_candidates c
ON CONFLICT (shop_id, member_id) DO NOTHING
"""

_LOCK = """
SELECT count(*) FROM (
    SELECT a.id FROM points_pointsaccount a
     WHERE a.shop_id = %(shop)s
       AND a.member_id IN (SELECT member_id FROM points_bonus_candidates)
     ORDER BY a.id FOR UPDATE OF a
) AS locked
"""

# One candidate per member and statement (a member due two bonuses gets the
# second in the next round), so each entry's total_after is exact.
_CREDIT = """
WITH fresh AS (
    SELECT DISTINCT ON (c.member_id) c.*
      FROM points_bonus_candidates c
     WHERE NOT EXISTS (SELECT 1 FROM points_pointsentry e
                        WHERE e.shop_id = %(shop)s AND e.idempotency_key = c.key)
     ORDER BY c.member_id, c.key
),
entries AS (
    INSERT INTO points_pointsentry
        (shop_id, account_id, kind, points, total_after, source, reason,
         purchase_id, reference, idempotency_key, acting_user_id, actor_label,
         created_at)
    SELECT %(shop)s, a.id, 'earn', f.points, a.balance + f.points, f.source,
           f.reason, NULL, f.reference, f.key, NULL, %(actor)s, %(now)s
      FROM fresh f
      JOIN points_pointsaccount a ON a.shop_id = %(shop)s AND a.member_id = f.member_id
    ON CONFLICT (shop_id, idempotency_key) WHERE NOT (idempotency_key = '')
    DO NOTHING
    RETURNING id, account_id, points, total_after, source, reason, reference
),
lots AS (
    INSERT INTO points_pointslot
        (shop_id, account_id, entry_id, points, remaining, expires_at,
         available_at, created_at)
    SELECT %(shop)s, e.account_id, e.id, e.points,
           GREATEST(0, e.points + LEAST(a.balance, 0)), %(expires_at)s, %(now)s,
           %(now)s
      FROM entries e
      JOIN points_pointsaccount a ON a.shop_id = %(shop)s AND a.id = e.account_id
),
accounts AS (
    UPDATE points_pointsaccount a
       SET balance = a.balance + e.points,
           lifetime_earned = a.lifetime_earned + e.points,
           updated_at = %(now)s
      FROM entries e
     WHERE a.shop_id = %(shop)s AND a.id = e.account_id
    RETURNING a.id, a.member_id, a.balance, a.pending
),
outbox AS (
    INSERT INTO shops_outboxevent (shop_id, topic, payload, created_at)
    SELECT %(shop)s, %(topic)s, jsonb_build_object(
               'member', jsonb_build_object('id', m.id,
                                            'member_code', m.member_code),
               'entry', jsonb_build_object(
                   'id', e.id, 'kind', 'earn', 'points', e.points,
                   'total_after', e.total_after, 'source', e.source,
                   'reason', e.reason, 'reference', e.reference,
                   'purchase_id', NULL, 'created_at', %(now_iso)s),
               'balance', ac.balance,
               'pending', ac.pending),
           %(now)s
      FROM entries e
      JOIN accounts ac ON ac.id = e.account_id
      JOIN members_member m ON m.shop_id = %(shop)s AND m.id = ac.member_id
)
SELECT count(*), COALESCE(SUM(points), 0) FROM entries
"""


def _bulk_award(*, shop, select_sql: str, params: dict, now) -> int:
    """Credit every row of `select_sql` (member_id, points, key, source,
    reference, reason) once by its key; returns how many entries were written."""
    policy = rules.policy_for(shop, cached=False)
    params = {
        **params,
        "shop": shop.pk,
        "now": now,
        "now_iso": now.isoformat(),
        "actor": ACTOR,
        "topic": events.POINTS_EARNED,
        "expires_at": rules.expiry_for(policy, shop=shop, at=now),
    }
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return _award_portably(shop, cursor, select_sql, params)
        cursor.execute(_CANDIDATES)
        cursor.execute("DELETE FROM points_bonus_candidates")
        cursor.execute(
            "INSERT INTO points_bonus_candidates "
            "(member_id, points, key, source, reference, reason) " + select_sql,
            params,
        )
        if not cursor.rowcount:
            return 0
        cursor.execute(_ACCOUNTS, params)
        cursor.execute(_LOCK, params)
        while True:  # once per bonus a member is due in this run (one or two)
            cursor.execute(_CREDIT, params)
            count, _points = cursor.fetchone()
            if not count:
                break
            written += count
        if written:
            transaction.on_commit(kick_relay, robust=True)
    return written


def _award_portably(shop, cursor, select_sql, params) -> int:
    """The same, member by member: for the embedded SQLite database only
    (development and the demo); production runs the statements above."""
    import re

    # SQLite spells booleans as integers and has no LATERAL: the birthday's
    # entry tier is looked up once instead.
    sql = re.sub(r"%\((\w+)\)s", r":\1", select_sql)
    sql = sql.replace(
        "LEFT JOIN LATERAL (SELECT birthday_points FROM tiers_tier\n"
        "                      WHERE shop_id = :shop ORDER BY rank LIMIT 1) et ON true",
        "LEFT JOIN (SELECT birthday_points FROM tiers_tier WHERE shop_id = :shop "
        "ORDER BY rank LIMIT 1) et ON 1",
    )
    cursor.execute(sql, params)
    members = {
        m.pk: m
        for m in Member.objects.unscoped().filter(
            shop_id=shop.pk, pk__in=[row[0] for row in cursor.fetchall()]
        )
    }
    cursor.execute(sql, params)
    written = 0
    for member_id, points, key, source, reference, reason in cursor.fetchall():
        member = members[member_id]
        member.shop = shop
        entry = ledger.credit(
            member=member,
            points=points,
            kind=EntryKind.EARN,
            source=source,
            reason=reason,
            reference=reference,
            idempotency_key=key,
            expires_at=params["expires_at"],
            actor_label=ACTOR,
        )
        written += not entry.replayed
    return written


def _rule(shop, kind):
    rule = rules.rules_for(shop, cached=False).get(kind)
    return rule if rule is not None and rule.points > 0 else None


_REGISTRATION_SQL = """
SELECT m.id, %(reg_points)s, 'registration:' || m.id, 'registration',
       %(reg_ref)s, ''
  FROM members_member m
 WHERE m.shop_id = %(shop)s AND m.status = 'active' AND m.joined_at >= %(since)s
"""
_PROFILE_SQL = """
SELECT m.id, %(profile_points)s, 'profile:' || m.id, 'profile', %(profile_ref)s, ''
  FROM members_member m
 WHERE m.shop_id = %(shop)s AND m.status = 'active' AND m.updated_at >= %(since)s
   AND m.name <> '' AND m.phone <> '' AND m.gender <> ''
   AND m.birthday_month IS NOT NULL AND m.birthday_day IS NOT NULL
"""


def award_signup_bonuses(*, shop, since=None, now=None) -> int:
    """Registration and profile bonuses for members of `shop` who joined or
    changed their profile since `since` (default: `SIGNUP_LOOKBACK` ago).
    Set-based and idempotent by key; returns how many bonuses were given."""
    now = now or timezone.now()
    since = since or now - SIGNUP_LOOKBACK
    registration = _rule(shop, RuleKind.REGISTRATION)
    profile = _rule(shop, RuleKind.PROFILE)
    parts, params = [], {"since": since}
    if registration is not None:
        parts.append(_REGISTRATION_SQL)
        params |= {
            "reg_points": registration.points,
            "reg_ref": f"rule:{registration.pk}",
        }
    if profile is not None:
        parts.append(_PROFILE_SQL)
        params |= {
            "profile_points": profile.points,
            "profile_ref": f"rule:{profile.pk}",
        }
    if not parts:
        return 0
    return _bulk_award(
        shop=shop, select_sql=" UNION ALL ".join(parts), params=params, now=now
    )


_BIRTHDAY_SQL = """
SELECT m.id,
       %(rule_points)s + COALESCE(t.birthday_points, et.birthday_points, 0),
       'birthday:' || m.id || ':' || %(year)s, 'birthday', %(rule_ref)s, ''
  FROM members_member m
  LEFT JOIN tiers_membertier mt ON mt.shop_id = %(shop)s AND mt.member_id = m.id
  LEFT JOIN tiers_tier t ON t.shop_id = %(shop)s AND t.id = mt.tier_id
  LEFT JOIN LATERAL (SELECT birthday_points FROM tiers_tier
                      WHERE shop_id = %(shop)s ORDER BY rank LIMIT 1) et ON true
 WHERE m.shop_id = %(shop)s AND m.status = 'active'
   AND ((m.birthday_month = %(month)s AND m.birthday_day = %(day)s)
        OR (%(leap_day_too)s AND m.birthday_month = 2 AND m.birthday_day = 29))
   AND %(rule_points)s + COALESCE(t.birthday_points, et.birthday_points, 0) > 0
"""


def award_birthday_bonuses(*, shop, today: date | None = None, now=None) -> int:
    """Birthday points for members of `shop` whose birthday is `today` (the
    shop's today by default): the birthday rule's points plus the tier's
    birthday gift, once a year. Returns how many members got them."""
    now = now or timezone.now()
    today = today or timezone.localtime(now, shop.zone).date()
    rule = _rule(shop, RuleKind.BIRTHDAY)
    leap_day_too = (
        today.month == 2 and today.day == 28 and not calendar.isleap(today.year)
    )
    return _bulk_award(
        shop=shop,
        select_sql=_BIRTHDAY_SQL,
        params={
            "rule_points": rule.points if rule is not None else 0,
            "rule_ref": f"rule:{rule.pk}" if rule is not None else "",
            "year": str(today.year),
            "month": today.month,
            "day": today.day,
            "leap_day_too": leap_day_too,
        },
        now=now,
    )
