"""The made-up rows: members and their purchases as COPY text, from a seed.

Pure Python, no database: `member_chunks` and `purchase_chunks` yield chunks
of tab-separated rows for a `Plan` (the shop, the sizes, the ids reserved for
this run). Made from `random.Random(seed)`: the same seed gives the same rows
in a fresh shop; times are relative to today. Members come in joining order
and purchases in time order, so ids, order numbers and times rise together as
in a real shop (and index builds get nearly sorted input). Per-row work is
kept small: pools and lookup tables are made once, rows are f-strings.
"""

from __future__ import annotations

import array
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from members import codes
from members.demo import EMAIL_DOMAINS, name_pool, words
from shops.models import Shop

CHUNK_ROWS = 20_000
DAY = 86_400
MEMBER_YEARS = 3
PURCHASE_YEARS = 2


# Mainland mobile prefixes; the other eight digits come from the member number.
PHONE_PREFIXES = tuple(
    f"+86{p}"
    for p in (*range(130, 140), *range(150, 154), *range(155, 160), *range(180, 190))
)
BRANCHES = (
    "Pudong 浦东店",
    "Hongqiao 虹桥店",
    "Wujiaochang 五角场店",
    "Lujiazui 陆家嘴店",
    "Minhang 闵行店",
    "Songjiang 松江店",
    "Hangzhou Xihu 杭州西湖店",
    "Suzhou Pingjiang 苏州平江店",
)
REFUND_REASONS = ("Changed mind", "Damaged in delivery", "Wrong item", "Duplicate")
# Phones are a bijection of the member number (n * A + B mod the space), so
# they never repeat in a shop, across runs too, without remembering any.
PHONE_BLOCK = 100_000_000
PHONE_SPACE = len(PHONE_PREFIXES) * PHONE_BLOCK
PHONE_A = 2_654_435_761  # coprime with the space (not divisible by 2, 3 or 5)
assert math.gcd(PHONE_A, PHONE_SPACE) == 1


@dataclass
class Plan:
    shop: Shop
    members: int
    purchases: int
    seed: int
    store_ids: list[int]
    first_number: int = 0  # first member number (member code) of this run
    first_member_id: int = 0
    first_purchase_id: int = 0
    # Whole days since `origin` (midnight UTC, MEMBER_YEARS before today).
    origin: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    days: int = 0
    utc_offset: int = 0  # seconds, the shop's time zone: business hours are local


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# Rows -----------------------------------------------------------------------

MEMBER_COLUMNS = words(
    "id shop_id member_code name phone phone_last4 email birthday_month "
    "birthday_day birth_year gender language home_store_id source "
    "referred_by_id status joined_at sms_consent sms_consent_at email_consent "
    "email_consent_at notes custom_fields external_id total_spent order_count "
    "created_at updated_at"
)
PURCHASE_COLUMNS = words(
    "id shop_id member_id store_id external_order_id amount discount "
    "paid_amount refunded_amount currency channel status occurred_at "
    "completed_at cancelled_at note created_at"
)
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _weighted(pairs: list[tuple[object, int]], size: int = 1000) -> list:
    """A table to index with random(): each value as often as its weight."""
    total = sum(weight for _value, weight in pairs)
    table: list = []
    for value, weight in pairs:
        table += [value] * round(weight * size / total)
    return table


def _clock_strings(plan: Plan) -> tuple[list[str], list[str]]:
    """Timestamps are made as day + time-of-day strings: far cheaper than
    formatting a datetime for each of ten million rows."""
    day_names = [
        (plan.origin + timedelta(days=d)).strftime("%Y-%m-%d ")
        for d in range(plan.days + 1)
    ]
    times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(DAY)]
    return day_names, times


def member_chunks(plan: Plan, joined: array.array, homes: array.array):
    """Member rows; fills `joined` (seconds since origin) and `homes` (store
    index or -1) for the purchases."""
    rng = random.Random(f"{plan.seed}:members")
    rnd = rng.random
    names = name_pool(random.Random(f"{plan.seed}:names"))
    n_names = len(names)
    days, times = _clock_strings(plan)
    span = plan.days * DAY
    b = random.Random(f"{plan.seed}:phones").randrange(PHONE_SPACE)
    stores = plan.store_ids
    n_stores = len(stores)
    genders = _weighted([("female", 55), ("male", 35), ("", 8), ("other", 2)])
    sources = _weighted(
        [
            ("counter", 45),
            ("qr", 20),
            ("portal", 12),
            ("referral", 8),
            ("import", 10),
            ("api", 5),
        ]
    )
    statuses = _weighted([("active", 93), ("inactive", 6), ("blocked", 1)])
    languages = _weighted([("", 70), ("zh-hans", 25), ("en", 5)])
    shop_id, first_id, first_number = (
        plan.shop.pk,
        plan.first_member_id,
        plan.first_number,
    )
    now = days[-1] + "00:00:00+00"
    encode = codes.encode
    rows = []
    for i in range(plan.members):
        n = first_number + i
        name, local = names[int(rnd() * n_names)]
        v = (n * PHONE_A + b) % PHONE_SPACE
        last8 = v % PHONE_BLOCK
        phone = f"{PHONE_PREFIXES[v // PHONE_BLOCK]}{last8:08d}"
        has_email = rnd() < 0.35
        email = (
            f"{local}{n}@{EMAIL_DOMAINS[n % len(EMAIL_DOMAINS)]}" if has_email else ""
        )
        if rnd() < 0.85:
            month = int(rnd() * 12)
            birthday = f"{month + 1}\t{1 + int(rnd() * MONTH_DAYS[month])}\t" + (
                str(1955 + int(rnd() * 52)) if rnd() < 0.6 else "\\N"
            )
        else:
            birthday = "\\N\t\\N\t\\N"
        t = int((i + rnd()) * span / plan.members)  # ids follow joining order
        joined.append(t)
        at = days[t // DAY] + times[t % DAY]
        if rnd() < 0.9:
            home = int(rnd() * n_stores)
            homes.append(home)
            home_id = stores[home]
        else:
            homes.append(-1)
            home_id = "\\N"
        source = sources[int(rnd() * len(sources))]
        referrer = first_id + int(rnd() * i) if source == "referral" and i else "\\N"
        sms = "t\t" + at if rnd() < 0.6 else "f\t\\N"
        mail = "t\t" + at if has_email and rnd() < 0.5 else "f\t\\N"
        rows.append(
            f"{first_id + i}\t{shop_id}\t{encode(n)}\t{name}\t{phone}\t"
            f"{last8 % 10000:04d}\t{email}\t{birthday}\t"
            f"{genders[int(rnd() * len(genders))]}\t"
            f"{languages[int(rnd() * len(languages))]}\t{home_id}\t{source}\t"
            f"{referrer}\t{statuses[int(rnd() * len(statuses))]}\t{at}\t{sms}\t"
            f"{mail}\t\t{{}}\t\t0.00\t0\t{at}\t{now}\n"
        )
        if len(rows) == CHUNK_ROWS:
            yield "".join(rows)
            rows.clear()
    if rows:
        yield "".join(rows)


def _amount_table(rng: random.Random, size: int = 4096) -> list[tuple[str, ...]]:
    """(amount, discount, paid, part of paid) strings: a log-normal spread of
    tickets around 90 yuan with a long tail of big orders."""
    table = []
    for _ in range(size):
        cents = max(100, round(rng.lognormvariate(math.log(9000), 0.85)))
        if rng.random() < 0.05:  # gift boxes, tea sets
            cents *= rng.randint(3, 15)
        discount = (
            cents * rng.choice((5, 10, 15, 20)) // 100 if rng.random() < 0.2 else 0
        )
        paid = cents - discount
        part = max(1, paid * rng.randint(10, 70) // 100)
        table.append(
            tuple(f"{c // 100}.{c % 100:02d}" for c in (cents, discount, paid, part))
        )
    return table


def purchase_chunks(plan: Plan, joined: array.array, homes: array.array):
    """Purchase rows over the last PURCHASE_YEARS, in time order (so ids, order
    numbers and times rise together, as in a real shop, and the indexes on
    them grow at their end). Each day's buyers are members who had joined by
    then: a few buy often, most now and then, a quarter never. Most purchases
    are completed; some refunded in full or in part, cancelled, or (in the last
    week) still pending."""
    rng = random.Random(f"{plan.seed}:purchases")
    rnd = rng.random
    amounts = _amount_table(random.Random(f"{plan.seed}:amounts"))
    days, times = _clock_strings(plan)
    n = plan.members
    last_day = plan.days - 1
    first_day = max(0, plan.days - PURCHASE_YEARS * 365)
    n_days = last_day - first_day + 1
    opening = (9 * 3600 - plan.utc_offset) % DAY  # 09:00 to 22:00 in the shop
    stores = plan.store_ids
    n_stores = len(stores)
    shop_id, first_member = plan.shop.pk, plan.first_member_id
    currency = plan.shop.currency
    prefix = f"GEN{plan.first_number}-"  # unique per run in the shop
    pid = plan.first_purchase_id
    k = eligible = 0
    rows = []
    for d in range(n_days):
        day = first_day + d
        count = plan.purchases * (d + 1) // n_days - k
        while eligible < n and joined[eligible] < (day + 1) * DAY:
            eligible += 1
        e = max(eligible, 1)
        vips, regulars, buyers = (
            max(1, e // 200),
            max(1, e * 2 // 25),
            max(1, e * 3 // 4),
        )
        pending = 0.3 if day > last_day - 7 else 0.0
        day_name = days[day]
        for second in sorted(
            (opening + int(rnd() * 46_800)) % DAY for _ in range(count)
        ):
            k += 1
            r = rnd()
            if r < 0.1:
                m = int(rnd() * vips)
            elif r < 0.4:
                m = int(rnd() * regulars)
            else:
                m = int(rnd() * buyers)
            at = day_name + times[second]
            amount, discount, paid, part = amounts[rng.getrandbits(12)]
            c = rnd()
            if c < 0.7:
                channel = "store"
                home = homes[m]
                if home >= 0 and c < 0.55:
                    store = stores[home]
                else:
                    store = stores[int(rnd() * n_stores)]
            else:
                channel = "online" if c < 0.85 else "app" if c < 0.97 else "phone"
                store = "\\N"
            head = (
                f"{pid}\t{shop_id}\t{first_member + m}\t{store}\t"
                f"{prefix}{k:09d}\t{amount}\t{discount}\t{paid}\t"
            )
            pid += 1
            r = rnd()
            if r < pending:
                tail = f"0.00\t{currency}\t{channel}\tpending\t{at}\t\\N\t\\N"
            elif r < 0.03:
                tail = f"{paid}\t{currency}\t{channel}\trefunded\t{at}\t{at}\t\\N"
            elif r < 0.055:
                tail = (
                    f"{part}\t{currency}\t{channel}\tpartially_refunded\t{at}\t"
                    f"{at}\t\\N"
                )
            elif r < 0.08:
                tail = f"0.00\t{currency}\t{channel}\tcancelled\t{at}\t\\N\t{at}"
            else:
                tail = f"0.00\t{currency}\t{channel}\tcompleted\t{at}\t{at}\t\\N"
            rows.append(f"{head}{tail}\t\t{at}\n")
            if len(rows) == CHUNK_ROWS:
                yield "".join(rows)
                rows.clear()
    if rows:
        yield "".join(rows)
