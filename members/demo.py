"""The demo shop's members and their purchases over the last two years.

`manage.py load_demo` calls `load(demo)` after the shops section. Everything
goes through the real services: members through register_member, the last
month's purchases through record_purchase / refund_purchase / cancel_purchase,
and older purchases as history the way the purchase import brings it in
(bulk rows, no events, figures by the import's `recompute_member_figures`), so
the figures, the timeline and the events are what staff would get. The plan
is made from a fixed seed; a run adds only the members (keyed by phone) and
purchases (keyed by order number) that are missing, so a second run adds
nothing.

The name pools are shared with the large-data generator (bench/datagen.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import (
    CustomField,
    Member,
    Purchase,
    PurchaseLine,
    PurchaseStatus,
    Refund,
)
from members.services.imports.purchases import recompute_member_figures
from members.services.members import register_member
from members.services.purchases import (
    cancel_purchase,
    record_purchase,
    refund_purchase,
)


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Common surnames and given-name characters with their pinyin (for emails).
SURNAMES = words(
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun "
    "马ma 朱zhu 胡hu 郭guo 何he 林lin 高gao 罗luo 郑zheng 梁liang 谢xie 宋song "
    "唐tang 许xu 韩han 冯feng 邓deng 曹cao 彭peng 曾zeng 肖xiao 田tian 董dong "
    "袁yuan 潘pan 蒋jiang 蔡cai 余yu 杜du 叶ye 程cheng 苏su 魏wei 吕lv 丁ding "
    "任ren 沈shen 姚yao 卢lu 钟zhong 陆lu 汪wang 范fan 金jin 石shi 廖liao 贾jia "
    "夏xia 方fang 白bai 邹zou 孟meng 秦qin 江jiang 顾gu 毛mao 欧阳ouyang 司马sima"
)
GIVEN = words(
    "伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan "
    "杰jie 娟juan 涛tao 明ming 超chao 秀xiu 霞xia 平ping 刚gang 桂gui 英ying 华hua "
    "玉yu 兰lan 萍ping 红hong 梅mei 琳lin 雪xue 婷ting 欣xin 怡yi 晨chen 浩hao "
    "宇yu 轩xuan 子zi 涵han 嘉jia 文wen 博bo 思si 佳jia 晓xiao 雨yu 诗shi 悦yue "
    "昊hao 鑫xin 俊jun 辰chen 然ran 睿rui 瑶yao 琪qi 颖ying 慧hui 志zhi 建jian "
    "国guo 海hai 云yun 峰feng 天tian 一yi 若ruo 安an 宁ning 清qing 茗ming 可ke"
)
EN_FIRST = words(
    "Emma Olivia Sophia Mia Grace Chloe Lily Emily Hannah Zoe Amy Lucy Anna Kate "
    "James Oliver Jack Daniel Lucas Henry Leo Ethan Ryan Adam David Michael Tom "
    "Sam Kevin Jason Eric Vivian Cindy Tina Jenny Cathy Helen Linda Nancy"
)
EN_LAST = words(
    "Smith Johnson Brown Taylor Wilson Davies Evans Thomas Roberts Walker Wright "
    "Green Hall Wood Clarke Lewis Harris Martin Jackson White Thompson Baker Young "
    "King Scott Turner Hill Moore Allen Wong Chan Lee Cheung Ng Tan Lim"
)
# Reserved for examples (RFC 2606): demo mail never reaches anyone.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


def random_name(rng: random.Random, english_share: float = 0.12) -> tuple[str, str]:
    """(name, email local part): a Chinese name, or now and then an English one."""
    if rng.random() < english_share:
        first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
        return f"{first} {last}", f"{first}.{last}".lower()
    surname = rng.choice(SURNAMES)
    cut = 1 if surname[1].isascii() else 2
    chars = [rng.choice(GIVEN) for _n in range(1 if rng.random() < 0.3 else 2)]
    return (
        surname[:cut] + "".join(c[0] for c in chars),
        "".join(c[1:] for c in chars) + "." + surname[cut:],
    )


def name_pool(rng: random.Random, size: int = 20_000) -> list[tuple[str, str]]:
    return [random_name(rng) for _n in range(size)]


# The demo ---------------------------------------------------------------------

SEED = "jade-leaf-demo"
MEMBERS = 160
# Purchases of the last LIVE_DAYS go through record_purchase (events, tag rules);
# older ones are brought in as history, the way the purchase import does it (no
# events: each costs a task run after the commit, too slow for `make run`).
LIVE_DAYS = 30
ORDER_PREFIX = "DEMO-"
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# A tea house's shelf: (SKU, name, price).
CATALOGUE = (
    ("LJ-100", "West Lake Longjing 西湖龙井 100g", Decimal("168.00")),
    ("TGY-100", "Anxi Tieguanyin 安溪铁观音 100g", Decimal("98.00")),
    ("PE-357", "Aged Pu'er cake 普洱茶饼 357g", Decimal("388.00")),
    ("DHP-50", "Wuyi Dahongpao 武夷大红袍 50g", Decimal("238.00")),
    ("BLC-100", "Biluochun 碧螺春 100g", Decimal("128.00")),
    ("JAS-200", "Jasmine pearls 茉莉龙珠 200g", Decimal("88.00")),
    ("CUP-MILK", "Milk oolong, cup 奶香乌龙(杯)", Decimal("22.00")),
    ("CUP-LEMON", "Lemon black tea, cup 柠檬红茶(杯)", Decimal("18.00")),
    ("GAI-01", "Porcelain gaiwan 白瓷盖碗", Decimal("128.00")),
    ("SET-GIFT", "Gift box, four teas 四季礼盒", Decimal("688.00")),
)
TEAS = ("longjing", "tieguanyin", "puer", "dahongpao", "jasmine", "milk_oolong")
CUSTOM_FIELDS = (
    {
        "key": "tea",
        "label": "Favourite tea 最爱的茶",
        "field_type": "choice",
        "choices": list(TEAS),
        "position": 1,
    },
    {
        "key": "tasting_club",
        "label": "Tasting club 品茶会",
        "field_type": "boolean",
        "position": 2,
    },
)


@dataclass
class PlannedMember:
    phone: str
    name: str
    details: dict
    referrer: int | None = None  # index of an earlier planned member
    purchases: list[dict] = field(default_factory=list)


def _business_time(rng: random.Random, day: datetime, zone) -> datetime:
    local = day.astimezone(zone).replace(hour=9, minute=0, second=0, microsecond=0)
    return local + timedelta(seconds=int(rng.random() * 13 * 3600))


def plan(now: datetime, zone, store_codes: list[str]) -> list[PlannedMember]:
    """The same members and purchases every time (times relative to `now`)."""
    rng = random.Random(SEED)  # noqa: S311 (made-up data, same every run)
    numbers = rng.sample(range(10_000_000, 99_999_999), MEMBERS)
    prefixes = ("138", "139", "135", "186", "158", "177", "150", "188")
    planned: list[PlannedMember] = []
    order = 0
    for i, number in enumerate(numbers):
        name, local = random_name(rng)
        joined = now - timedelta(days=rng.random() * 3 * 365 + 1)
        joined = _business_time(rng, joined, zone)
        source = rng.choices(
            ("counter", "qr", "portal", "referral", "import"), (45, 20, 15, 12, 8)
        )[0]
        email = f"{local}{i + 1}@{EMAIL_DOMAINS[i % 3]}" if rng.random() < 0.4 else ""
        details = {
            "name": name,
            "email": email,
            "gender": rng.choices(("female", "male", ""), (55, 38, 7))[0],
            "language": rng.choices(("", "zh-hans", "en"), (60, 30, 10))[0],
            "home_store": rng.choice(store_codes),
            "source": source,
            "joined_at": joined,
            "sms_consent": rng.random() < 0.6,
            "email_consent": bool(email) and rng.random() < 0.5,
            "custom_fields": {},
        }
        if rng.random() < 0.9:
            month = rng.randint(1, 12)
            details["birthday_month"] = month
            details["birthday_day"] = rng.randint(1, MONTH_DAYS[month - 1])
            if rng.random() < 0.6:
                details["birth_year"] = rng.randint(1958, 2005)
        if rng.random() < 0.7:
            details["custom_fields"]["tea"] = rng.choice(TEAS)
        if rng.random() < 0.25:
            details["custom_fields"]["tasting_club"] = True
        member = PlannedMember(
            phone=f"+86{rng.choice(prefixes)}{number}",
            name=name,
            details=details,
            referrer=rng.randrange(i) if source == "referral" and i else None,
        )
        # A few regulars, many occasional customers, some who never came back.
        count = 0 if rng.random() < 0.15 else min(40, int(rng.paretovariate(1.2)) * 3)
        start = max(joined, now - timedelta(days=730))
        for _n in range(count):
            order += 1
            member.purchases.append(_plan_purchase(rng, order, start, now, zone))
        planned.append(member)
    return planned


def _plan_purchase(rng, order: int, start: datetime, now: datetime, zone) -> dict:
    span = (now - start).total_seconds()
    at = _business_time(rng, start + timedelta(seconds=rng.random() * span), zone)
    if at > now - timedelta(hours=1):
        at = now - timedelta(hours=1 + rng.random() * 5)
    picks = rng.sample(CATALOGUE, rng.choice((1, 1, 1, 2, 2, 3)))
    lines = [
        {
            "sku": sku,
            "name": name,
            "quantity": rng.choice((1, 1, 1, 2, 3)),
            "unit_price": p,
        }
        for sku, name, p in picks
    ]
    amount = sum(line["quantity"] * line["unit_price"] for line in lines)
    recent = now - at < timedelta(days=10)
    r = rng.random()
    if recent and r < 0.35:
        outcome = "pending"
    elif recent and r < 0.45:
        outcome = "cancelled"
    elif r < 0.04:
        outcome = "refunded"
    elif r < 0.07:
        outcome = "partly_refunded"
    else:
        outcome = "completed"
    return {
        "external_order_id": f"{ORDER_PREFIX}{order:05d}",
        "occurred_at": at,
        "amount": amount,
        "discount": (amount * Decimal("0.1")).quantize(Decimal("0.01"))
        if rng.random() < 0.15
        else Decimal("0.00"),
        "lines": lines,
        "channel": rng.choices(("store", "online", "app"), (75, 15, 10))[0],
        "outcome": outcome,
        "partial_share": Decimal(rng.randint(20, 60)) / 100,
    }


def _ensure_custom_fields(shop) -> None:
    # The shop's own settings, as an owner would make them in the admin; no
    # service exists for defining fields (the admin form saves the model).
    for definition in CUSTOM_FIELDS:
        CustomField.objects.get_or_create(
            shop=shop, key=definition["key"], defaults=definition
        )


def _record(shop, member: Member, planned: dict, stores: dict, staff) -> None:
    store = stores[member.home_store_id] if planned["channel"] == "store" else None
    purchase = record_purchase(
        shop=shop,
        member=member,
        external_order_id=planned["external_order_id"],
        amount=planned["amount"],
        discount=planned["discount"],
        lines=planned["lines"],
        store=store,
        channel=planned["channel"],
        occurred_at=planned["occurred_at"],
        complete=planned["outcome"] not in ("pending", "cancelled"),
        acting_user=staff if store else None,
        actor_label="" if store else "Online shop",
    )
    outcome = planned["outcome"]
    if outcome == "cancelled":
        cancel_purchase(purchase=purchase, reason="Customer changed their mind")
    elif outcome == "refunded":
        refund_purchase(
            purchase=purchase, reason="Returned unopened", acting_user=staff
        )
    elif outcome == "partly_refunded":
        amount = (purchase.paid_amount * planned["partial_share"]).quantize(
            Decimal("0.01")
        )
        refund_purchase(
            purchase=purchase,
            amount=max(amount, Decimal("0.01")),
            reason="One item returned",
            acting_user=staff,
        )


def _history(shop, rows: list[tuple[Member, dict]], stores: dict) -> None:
    """Old purchases as the import writes them: bulk rows, then the figures."""
    purchases, lines, refunds = [], [], []
    for member, planned in rows:
        paid = planned["amount"] - planned["discount"]
        refunded = Decimal("0.00")
        status = PurchaseStatus.COMPLETED
        if planned["outcome"] == "refunded":
            refunded, status = paid, PurchaseStatus.REFUNDED
        elif planned["outcome"] == "partly_refunded":
            refunded = max(
                (paid * planned["partial_share"]).quantize(Decimal("0.01")),
                Decimal("0.01"),
            )
            status = PurchaseStatus.PARTIALLY_REFUNDED
        store = stores[member.home_store_id] if planned["channel"] == "store" else None
        purchase = Purchase(
            shop=shop,
            member=member,
            store=store,
            external_order_id=planned["external_order_id"],
            amount=planned["amount"],
            discount=planned["discount"],
            paid_amount=paid,
            refunded_amount=refunded,
            currency=shop.currency,
            channel=planned["channel"],
            status=status,
            occurred_at=planned["occurred_at"],
            completed_at=planned["occurred_at"],
        )
        purchases.append(purchase)
        lines.append(planned["lines"])
        if refunded:
            refunds.append((purchase, refunded))
    Purchase.objects.bulk_create(purchases, batch_size=500)
    PurchaseLine.objects.bulk_create(
        [
            PurchaseLine(shop=shop, purchase=purchase, **line)
            for purchase, planned_lines in zip(purchases, lines, strict=True)
            for line in planned_lines
        ],
        batch_size=500,
    )
    Refund.objects.bulk_create(
        [
            Refund(shop=shop, purchase=purchase, amount=amount, reason="Returned")
            for purchase, amount in refunds
        ]
    )
    recompute_member_figures(shop=shop, member_ids={m.pk for m, _p in rows})


def load(demo) -> None:
    """Add the demo members and purchases that are missing (see the module doc)."""
    shop = demo.shop
    now = timezone.now()
    by_code = {code: store for code, store in demo.stores.items()}
    planned = plan(now, shop.zone, sorted(by_code))
    _ensure_custom_fields(shop)

    phones = [p.phone for p in planned]
    members = {m.phone: m for m in Member.objects.filter(phone__in=phones)}
    done = set(
        Purchase.objects.filter(external_order_id__startswith=ORDER_PREFIX).values_list(
            "external_order_id", flat=True
        )
    )
    stores = {store.pk: store for store in by_code.values()}
    added_members = 0
    history, live = [], []
    live_since = now - timedelta(days=LIVE_DAYS)
    for p in planned:
        member = members.get(p.phone)
        if member is None:
            details = dict(p.details)
            details["home_store"] = by_code[details["home_store"]]
            referrer = planned[p.referrer].phone if p.referrer is not None else None
            member = register_member(
                shop=shop,
                phone=p.phone,
                referred_by=members.get(referrer),
                acting_user=demo.owner,
                **details,
            )
            members[p.phone] = member
            added_members += 1
        for purchase in p.purchases:
            if purchase["external_order_id"] not in done:
                recent = purchase["occurred_at"] >= live_since
                (live if recent else history).append((member, purchase))
    if history:
        _history(shop, history, stores)
    for member, purchase in sorted(live, key=lambda pair: pair[1]["occurred_at"]):
        _record(shop, member, purchase, stores, demo.owner)

    total_members = Member.objects.filter(phone__in=phones).count()
    total_purchases = Purchase.objects.filter(
        external_order_id__startswith=ORDER_PREFIX
    ).count()
    demo.summary.append(
        _(
            "Members:  %(members)s demo members (%(new_members)s new), "
            "%(purchases)s purchases (%(new_purchases)s new)"
        )
        % {
            "members": f"{total_members:,}",
            "new_members": f"{added_members:,}",
            "purchases": f"{total_purchases:,}",
            "new_purchases": f"{len(history) + len(live):,}",
        }
    )
