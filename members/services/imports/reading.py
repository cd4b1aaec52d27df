"""Reading an uploaded spreadsheet: CSV or Excel, decided by the content.

The extension is only a hint (a shop's "members.csv" is often an Excel file
renamed, and the other way round). Excel is a ZIP with `xl/workbook.xml` in it;
anything else must decode as text (UTF-8 with or without BOM, or GB18030, the
superset of the GBK that Chinese Excel writes CSV in) and contain no binary
control characters. Rows come out as lists of cell values, numbered as the
spreadsheet shows them (the header is row 1).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

CSV = "csv"
XLSX = "xlsx"
# Tried in this order: a GBK file almost never decodes as UTF-8, while almost
# any bytes decode as GB18030, so UTF-8 must come first.
ENCODINGS = ("utf-8-sig", "gb18030")
READ_BLOCK = 1 << 20
# Text files hold tab, CR and LF; other control characters mean binary data.
BINARY_BYTES = frozenset(range(9)) | {11, 12} | frozenset(range(14, 32)) - {26, 27}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class SheetInfo:
    format: str
    encoding: str
    headers: list[str]
    total_rows: int


def _is_xlsx(fileobj: IO[bytes]) -> bool:
    fileobj.seek(0)
    if fileobj.read(4) != b"PK\x03\x04":
        return False
    fileobj.seek(0)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _detect_encoding(fileobj: IO[bytes]) -> str:
    """The first encoding that decodes the whole file, or a clear refusal."""
    for encoding in ENCODINGS:
        fileobj.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            while block := fileobj.read(READ_BLOCK):
                if not BINARY_BYTES.isdisjoint(block):
                    raise ValidationError(
                        _(
                            "This file is neither a CSV nor an Excel (.xlsx) file. "
                            "Save it from your spreadsheet as CSV or Excel and "
                            "upload it again."
                        ),
                        code="not_a_spreadsheet",
                    )
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ValidationError(
        _(
            "The text in this file could not be read. Save it as CSV in UTF-8 "
            "(or as an Excel .xlsx file) and upload it again."
        ),
        code="bad_encoding",
    )


def inspect(fileobj: IO[bytes]) -> SheetInfo:
    """The file's format, encoding, header row and number of data rows.

    Raises ValidationError with a message for the shop owner when the file is
    not a spreadsheet we can read, or has no header row.
    """
    fileobj.seek(0)
    head = fileobj.read(8)
    if head.startswith(OLE_MAGIC):
        raise ValidationError(
            _(
                "This is an old Excel file (.xls). Save it as .xlsx or CSV and "
                "upload it again."
            ),
            code="old_excel",
        )
    if not head:
        raise ValidationError(_("The file is empty."), code="empty")
    if _is_xlsx(fileobj):
        file_format, encoding = XLSX, ""
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text": UTF-16 with a BOM, tab-separated.
        file_format, encoding = CSV, "utf-16"
    else:
        file_format, encoding = CSV, _detect_encoding(fileobj)
    headers: list[str] | None = None
    total = 0
    try:
        for number, row in iter_rows(
            fileobj, file_format=file_format, encoding=encoding
        ):
            if headers is None:
                headers = [clean_header(value) for value in row]
                if number != 1 or not any(headers):
                    headers = None
                    break
                continue
            total += 1
    except (csv.Error, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValidationError(
            _("This file could not be read as a spreadsheet: %(error)s"),
            code="unreadable",
            params={"error": str(exc)[:200]},
        ) from exc
    if not headers:
        raise ValidationError(
            _("The first row must name the columns (for example 姓名, 手机)."),
            code="no_header",
        )
    return SheetInfo(file_format, encoding, headers, total)


def clean_header(value: Any) -> str:
    return "" if value is None else str(value).strip()


def iter_rows(
    fileobj: IO[bytes], *, file_format: str, encoding: str = ""
) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cell values) for every non-empty row, the header included."""
    fileobj.seek(0)
    if file_format == XLSX:
        yield from _xlsx_rows(fileobj)
        return
    text = io.TextIOWrapper(fileobj, encoding=encoding or "utf-8-sig", newline="")
    try:
        sample = text.read(64 * 1024)
        text.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        for number, row in enumerate(csv.reader(text, dialect), start=1):
            if any(cell.strip() for cell in row):
                yield number, row
    finally:
        # The caller owns the binary file; do not let the wrapper close it.
        # A reader abandoned half way may be collected after the caller
        # closed that file: then there is nothing left to detach from.
        with contextlib.suppress(ValueError):
            text.detach()


def _xlsx_rows(fileobj: IO[bytes]) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl

    workbook = openpyxl.load_workbook(fileobj, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = list(row)
            if any(v is not None and str(v).strip() for v in values):
                yield number, values
    finally:
        workbook.close()


def cell_text(value: Any) -> str:
    """A cell as text: Excel's 13800138000.0 is "13800138000", dates are ISO."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value).strip()
