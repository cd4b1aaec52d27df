"""Export of members and purchases to CSV and Excel, in constant memory.

Rows are read with `values_list(...).iterator(chunk_size=...)` (a server-side
cursor on PostgreSQL), so a million members never sit in memory: CSV is
streamed as it is read, Excel is written row by row by openpyxl's write-only
workbook into a temporary file that is then streamed. The caller passes the
queryset (e.g. the admin list with its filters); these functions only format.

A streamed response's body is produced after the view has returned, outside
the request's shop scope, so the generators set the scope again themselves.
"""

from __future__ import annotations

import csv
import datetime
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from members.models import Gender, MemberSource, MemberStatus, PurchaseChannel
from members.models import PurchaseStatus as Status
from shops.tenancy import shop_scope

CHUNK_SIZE = 2000
CSV_FLUSH_ROWS = 500
BOM = "\ufeff"


def mask_phone(phone: str) -> str:
    """+8613800138000 -> 138****8000: enough for the counter, not for a list."""
    if not phone:
        return ""
    national = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    if len(national) <= 7:
        return national[:2] + "*" * max(len(national) - 4, 0) + national[-2:]
    return national[:3] + "*" * (len(national) - 7) + national[-4:]


@dataclass(frozen=True)
class Column:
    field: str
    header: Callable[[], str]
    format: Callable[[Any, Any], Any] | None = None


def _local(value, shop):
    if value is None:
        return None
    return value.astimezone(shop.zone).replace(tzinfo=None, microsecond=0)


def _label(choices):
    labels = dict(choices)
    return lambda value, shop: str(labels.get(value, value))


def _yes_no(value, shop):
    return _("yes") if value else _("no")


MEMBER_COLUMNS = (
    Column("member_code", lambda: _("Member code")),
    Column("name", lambda: _("Name")),
    Column("phone", lambda: _("Phone")),
    Column("email", lambda: _("Email")),
    Column("birthday_month", lambda: _("Birthday")),
    Column("gender", lambda: _("Gender"), _label(Gender.choices)),
    Column("home_store__code", lambda: _("Home store")),
    Column("source", lambda: _("Source"), _label(MemberSource.choices)),
    Column("status", lambda: _("Status"), _label(MemberStatus.choices)),
    Column("joined_at", lambda: _("Joined"), _local),
    Column("total_spent", lambda: _("Total spent")),
    Column("order_count", lambda: _("Orders")),
    Column("last_purchase_at", lambda: _("Last purchase"), _local),
    Column("sms_consent", lambda: _("SMS marketing"), _yes_no),
    Column("email_consent", lambda: _("Email marketing"), _yes_no),
    Column("external_id", lambda: _("External ID")),
)
# Read with the birthday's month so that one cell can say 1990-05-31 or 05-31.
MEMBER_EXTRA = ("birthday_day", "birth_year")

PURCHASE_COLUMNS = (
    Column("external_order_id", lambda: _("Order number")),
    Column("member__member_code", lambda: _("Member code")),
    Column("member__phone", lambda: _("Phone")),
    Column("store__code", lambda: _("Store code")),
    Column("amount", lambda: _("Amount")),
    Column("discount", lambda: _("Discount")),
    Column("paid_amount", lambda: _("Paid")),
    Column("refunded_amount", lambda: _("Refunded")),
    Column("currency", lambda: _("Currency")),
    Column("channel", lambda: _("Channel"), _label(PurchaseChannel.choices)),
    Column("status", lambda: _("Status"), _label(Status.choices)),
    Column("occurred_at", lambda: _("Time of purchase"), _local),
)


@dataclass(frozen=True)
class Export:
    """What to export: the rows' queryset and how each column is written."""

    shop: Any
    queryset: QuerySet
    columns: tuple[Column, ...]
    mask_phones: bool = False
    extra: tuple[str, ...] = ()

    def headers(self) -> list[str]:
        return [column.header() for column in self.columns]

    def rows(self) -> Iterator[list]:
        fields = [c.field for c in self.columns]
        values = self.queryset.order_by("pk").values_list(*fields, *self.extra)
        width = len(fields)
        for record in values.iterator(chunk_size=CHUNK_SIZE):
            row = []
            for column, value in zip(self.columns, record[:width], strict=True):
                if column.field == "birthday_month":
                    value = _birthday(value, *record[width:])
                elif column.field.endswith("phone") and self.mask_phones:
                    value = mask_phone(value)
                elif column.format is not None:
                    value = column.format(value, self.shop)
                row.append("" if value is None else value)
            yield row


def _birthday(month, day, year):
    if not month or not day:
        return ""
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def member_export(*, shop, queryset, mask_phones: bool) -> Export:
    return Export(shop, queryset, MEMBER_COLUMNS, mask_phones, MEMBER_EXTRA)


def purchase_export(*, shop, queryset, mask_phones: bool) -> Export:
    return Export(shop, queryset, PURCHASE_COLUMNS, mask_phones)


def _csv_text(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return value


def csv_chunks(export: Export) -> Iterator[bytes]:
    """The export as UTF-8 CSV with a BOM (so Excel reads Chinese right), in
    pieces of a few hundred rows, inside the shop's scope."""
    with shop_scope(export.shop):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write(BOM)
        writer.writerow(export.headers())
        pending = 0
        for row in export.rows():
            writer.writerow([_csv_text(v) for v in row])
            pending += 1
            if pending >= CSV_FLUSH_ROWS:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue().encode("utf-8")


def xlsx_file(export: Export, *, title: str) -> IO[bytes]:
    """The export written to an anonymous temporary file, ready to stream."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    with shop_scope(export.shop):
        sheet.append(export.headers())
        for row in export.rows():
            sheet.append(row)
    # Deleted when closed: the response closes it after the last byte.
    target = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    workbook.save(target)
    target.seek(0)
    return target


def write_csv(rows: Iterable[list]) -> Iterator[bytes]:
    """Any rows (e.g. an import's errors) as UTF-8 CSV with a BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
