"""What a file's columns can hold, the headers we recognise, and cell parsing.

Header matching ignores case, spaces, underscores, dashes and brackets, so
"Phone Number", "phone_number" and "手机号码(必填)" in full-width brackets all match.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.models import CustomField, Gender, ImportKind

from . import extra
from .reading import cell_text

CUSTOM_PREFIX = "custom:"
IGNORE = ""


@dataclass(frozen=True)
class Field:
    key: str
    label: Any
    aliases: tuple[str, ...]


MEMBER_FIELDS = (
    Field(
        "phone",
        _("Phone"),
        (
            "phone",
            "mobile",
            "mobilephone",
            "tel",
            "telephone",
            "phonenumber",
            "cellphone",
            "手机",
            "手机号",
            "手机号码",
            "电话",
            "电话号码",
            "联系电话",
            "联系方式",
        ),
    ),
    Field(
        "name",
        _("Name"),
        (
            "name",
            "fullname",
            "membername",
            "customername",
            "姓名",
            "名字",
            "会员姓名",
            "客户姓名",
            "会员名称",
        ),
    ),
    Field(
        "email",
        _("Email"),
        (
            "email",
            "e-mail",
            "mail",
            "emailaddress",
            "邮箱",
            "电子邮箱",
            "邮件",
            "电子邮件",
            "邮箱地址",
        ),
    ),
    Field(
        "birthday",
        _("Birthday"),
        (
            "birthday",
            "dateofbirth",
            "dob",
            "birthdate",
            "生日",
            "出生日期",
            "出生年月日",
        ),
    ),
    Field("gender", _("Gender"), ("gender", "sex", "性别")),
    Field(
        "member_code",
        _("Member code"),
        (
            "membercode",
            "memberno",
            "cardnumber",
            "cardno",
            "code",
            "会员码",
            "会员编号",
            "会员号",
            "会员卡号",
            "卡号",
        ),
    ),
    Field(
        "external_id",
        _("External ID"),
        ("externalid", "customerid", "外部编号", "外部id", "客户编号", "客户id"),
    ),
    Field(
        "joined_at",
        _("Joined"),
        (
            "joined",
            "joinedat",
            "joindate",
            "signupdate",
            "registered",
            "入会时间",
            "入会日期",
            "注册时间",
            "注册日期",
            "加入时间",
            "开卡时间",
            "开卡日期",
        ),
    ),
    Field(
        "home_store",
        _("Home store (code or name)"),
        (
            "homestore",
            "store",
            "storecode",
            "branch",
            "门店",
            "所属门店",
            "开卡门店",
            "门店编码",
            "门店代码",
        ),
    ),
    Field(
        "notes",
        _("Notes"),
        ("notes", "note", "remark", "remarks", "comment", "备注", "说明"),
    ),
    Field("language", _("Preferred language"), ("language", "lang", "语言")),
    Field("status", _("Status"), ("status", "状态", "会员状态")),
    Field(
        "sms_consent",
        _("SMS marketing (yes/no)"),
        ("smsconsent", "sms", "smsmarketing", "短信营销", "接收短信", "短信"),
    ),
    Field(
        "email_consent",
        _("Email marketing (yes/no)"),
        ("emailconsent", "emailmarketing", "邮件营销", "接收邮件"),
    ),
)

PURCHASE_FIELDS = (
    Field("phone", _("Member's phone"), (*MEMBER_FIELDS[0].aliases, "会员手机")),
    Field("member_code", _("Member code"), MEMBER_FIELDS[5].aliases),
    Field(
        "external_id",
        _("Member's external ID"),
        ("memberexternalid", "externalid", "customerid", "会员外部编号", "客户编号"),
    ),
    Field(
        "external_order_id",
        _("Order number"),
        (
            "ordernumber",
            "orderno",
            "orderid",
            "order",
            "externalorderid",
            "订单号",
            "订单编号",
            "单号",
            "流水号",
            "小票号",
        ),
    ),
    Field(
        "amount",
        _("Amount"),
        (
            "amount",
            "total",
            "orderamount",
            "金额",
            "订单金额",
            "消费金额",
            "应付金额",
            "总额",
        ),
    ),
    Field(
        "discount", _("Discount"), ("discount", "优惠", "折扣", "优惠金额", "折扣金额")
    ),
    Field(
        "paid_amount",
        _("Paid"),
        ("paid", "paidamount", "实付", "实付金额", "实收", "实收金额", "支付金额"),
    ),
    Field(
        "store",
        _("Store code"),
        ("store", "storecode", "branch", "门店", "门店编码", "门店代码"),
    ),
    Field(
        "occurred_at",
        _("Time of purchase"),
        (
            "occurredat",
            "date",
            "time",
            "datetime",
            "purchasetime",
            "orderdate",
            "时间",
            "日期",
            "消费时间",
            "下单时间",
            "交易时间",
            "消费日期",
        ),
    ),
    Field("status", _("Status"), ("status", "状态", "订单状态")),
    Field("channel", _("Channel"), ("channel", "渠道", "销售渠道")),
    Field("note", _("Note"), ("note", "notes", "remark", "备注")),
)

#: At least one of these must be mapped, or the import has nothing to go by.
MEMBER_KEYS = ("phone", "email", "external_id", "member_code")
PURCHASE_MEMBER_KEYS = ("phone", "member_code", "external_id")


def normalize_header(text: str) -> str:
    # Full-width brackets and colon too, as Chinese spreadsheets write them.
    return re.sub(r"[\s_\-()\uff08\uff09\[\]【】:\uff1a*]+|必填|选填", "", text.lower())


def fields_for(kind: str, *, shop=None) -> list[tuple[str, Any]]:
    """(key, label) of every field a column of a `kind` import can fill."""
    base = MEMBER_FIELDS if kind == ImportKind.MEMBERS else PURCHASE_FIELDS
    choices = [(f.key, f.label) for f in base]
    if kind == ImportKind.MEMBERS and shop is not None:
        choices += [
            (f"{CUSTOM_PREFIX}{cf.key}", cf.label)
            for cf in CustomField.objects.filter(shop=shop)
        ]
    choices += [(key, label) for key, label, _aliases in extra.fields_for(kind)]
    return choices


def suggest_mapping(headers: list[str], *, kind: str, shop=None) -> dict[str, str]:
    """{header: field} for the headers we recognise; each field used once."""
    base = MEMBER_FIELDS if kind == ImportKind.MEMBERS else PURCHASE_FIELDS
    lookup = {}
    for field in base:
        for alias in (field.key, *field.aliases):
            lookup.setdefault(normalize_header(alias), field.key)
    if kind == ImportKind.MEMBERS and shop is not None:
        for cf in CustomField.objects.filter(shop=shop):
            for alias in (cf.key, cf.label):
                lookup.setdefault(normalize_header(alias), f"{CUSTOM_PREFIX}{cf.key}")
    for key, _label, aliases in extra.fields_for(kind):
        for alias in (key, *aliases):
            lookup.setdefault(normalize_header(alias), key)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        field = lookup.get(normalize_header(header))
        if header and field and field not in used and header not in mapping:
            mapping[header] = field
            used.add(field)
    return mapping


# Cell parsing. Each parser takes a raw cell (text, number, date) and returns
# the value to store, or raises ValidationError with the message for that cell.

_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
    re.compile(r"^(?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"),
)


def parse_birthday(value: Any) -> tuple[int, int, int | None]:
    """(month, day, year or None) from 1990-05-31, 05-31, 5月31日 or a date cell."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.month, value.day, value.year
    text = cell_text(value)
    text = text.split("T")[0].split(" ")[0]
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            parts = match.groupdict()
            year = int(parts["y"]) if parts.get("y") else None
            return int(parts["m"]), int(parts["d"]), year
    raise ValidationError(
        _("“%(value)s” is not a birthday: use 1990-05-31 or 05-31."),
        params={"value": text},
    )


def parse_datetime(value: Any, *, zone) -> datetime.datetime:
    """An aware time; a time without zone is read in the shop's time zone."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, datetime.date):
        moment = datetime.datetime.combine(value, datetime.time())
    else:
        text = cell_text(value).replace("/", "-").replace("T", " ")
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationError(
                _("“%(value)s” is not a date: use 2024-05-31 or 2024-05-31 14:30."),
                params={"value": cell_text(value)},
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def parse_money(value: Any) -> Decimal:
    text = cell_text(value).replace(",", "").replace("¥", "").replace("￥", "")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValidationError(
            _("“%(value)s” is not an amount."), params={"value": cell_text(value)}
        ) from exc
    if not amount.is_finite() or amount < 0:
        raise ValidationError(
            _("“%(value)s” is not an amount of zero or more."),
            params={"value": cell_text(value)},
        )
    if amount >= Decimal("10000000000"):
        raise ValidationError(_("This amount is too large."))
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


_YES = {"yes", "y", "true", "1", "是", "同意", "接收", "x", "✓"}
_NO = {"no", "n", "false", "0", "否", "不同意", "不接收"}


def parse_bool(value: Any) -> bool:
    text = cell_text(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValidationError(
        _("“%(value)s” is not yes or no."), params={"value": cell_text(value)}
    )


_GENDERS = {
    "f": Gender.FEMALE, "female": Gender.FEMALE, "woman": Gender.FEMALE,
    "女": Gender.FEMALE, "女士": Gender.FEMALE,
    "m": Gender.MALE, "male": Gender.MALE, "man": Gender.MALE,
    "男": Gender.MALE, "先生": Gender.MALE,
    "other": Gender.OTHER, "其他": Gender.OTHER,
    "unknown": Gender.UNKNOWN, "未知": Gender.UNKNOWN, "保密": Gender.UNKNOWN,
}  # fmt: skip


def parse_gender(value: Any) -> str:
    text = cell_text(value).lower()
    if text in _GENDERS:
        return _GENDERS[text]
    raise ValidationError(
        _("“%(value)s” is not a gender: use 男/女, male/female or other."),
        params={"value": cell_text(value)},
    )


def parse_choice(value: Any, *, choices, aliases: dict[str, str] | None = None) -> str:
    """One of a TextChoices' values, by value, label or an alias."""
    text = cell_text(value)
    folded = text.lower()
    if aliases and folded in aliases:
        return aliases[folded]
    for choice_value, label in choices:
        if folded in (str(choice_value).lower(), str(label).lower()):
            return choice_value
    raise ValidationError(
        _("“%(value)s” is not one of: %(choices)s."),
        params={"value": text, "choices": ", ".join(str(v) for v, _l in choices)},
    )
