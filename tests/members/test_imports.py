"""Importing members from CSV and Excel: reading, mapping, dry run, duplicates,
all-or-nothing or valid rows only, errors by row and column, the task's run."""

import datetime
import io

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from members.models import (
    ConsentChange,
    ImportJob,
    ImportStatus,
    Member,
    MemberChange,
)
from members.services import imports
from members.tasks.imports import run_import
from shops.models import OutboxEvent
from shops.tenancy import shop_scope
from tests.factories import StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "姓名,手机,邮箱,生日,性别,短信营销\n"
ROWS = (
    "王小明,13800138000,ming@example.com,1990-05-31,男,是\n"
    "Alice Smith,139 0013 9000,alice@example.com,05-01,female,no\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def manager(db):
    return UserFactory()


def upload(content: bytes | str, name="members.csv", encoding="utf-8"):
    if isinstance(content, str):
        content = content.encode(encoding)
    return SimpleUploadedFile(name, content)


def xlsx(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def new_job(shop, manager, content, *, kind="members", name="members.csv"):
    with shop_scope(shop):
        return imports.create_import_job(
            shop=shop, kind=kind, upload=upload(content, name), acting_user=manager
        )


def run(job, *, dry_run, duplicates="skip", mode="valid_only", mapping=None):
    """Configure, start and (eagerly) run `job`; returns it fresh from the DB."""
    with shop_scope(job.shop):
        job = ImportJob.objects.get(pk=job.pk)
        imports.configure_import(
            job=job,
            mapping=mapping or job.mapping,
            duplicates=duplicates,
            mode=mode,
            acting_user=None,
        )
        imports.start_import(job=job, dry_run=dry_run, acting_user=None)
    run_import(shop_id=job.shop_id, job_id=job.pk)
    with shop_scope(job.shop):
        return ImportJob.objects.get(pk=job.pk)


def check_then_import(job, **options):
    checked = run(job, dry_run=True, **options)
    assert checked.status == ImportStatus.PREVIEWED
    with shop_scope(job.shop):
        imports.start_import(job=checked, dry_run=False, acting_user=None)
    run_import(shop_id=job.shop_id, job_id=job.pk)
    with shop_scope(job.shop):
        return ImportJob.objects.get(pk=job.pk)


def members(shop):
    with shop_scope(shop):
        return {m.phone: m for m in Member.objects.all()}


# Reading files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        (HEADER + ROWS, "utf-8"),
        ("\ufeff" + HEADER + ROWS, "utf-8"),
        (HEADER + ROWS, "gbk"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk"],
)
def test_a_csv_in_utf8_with_or_without_bom_or_gbk_is_read_alike(
    shop, manager, content, encoding
):
    job = new_job(shop, manager, content.encode(encoding))

    done = check_then_import(job)

    assert done.status == ImportStatus.DONE
    assert done.created_count == 2
    found = members(shop)
    assert found["+8613800138000"].name == "王小明"
    assert found["+8613800138000"].birthday_month == 5
    assert found["+8613800138000"].birth_year == 1990
    assert found["+8613800138000"].gender == "male"
    assert found["+8613800138000"].sms_consent is True
    assert found["+8613900139000"].name == "Alice Smith"
    assert found["+8613900139000"].birth_year is None


def test_an_excel_file_is_read_with_its_dates_and_number_cells(shop, manager):
    content = xlsx(
        [
            ["姓名", "手机号", "生日", "会员码"],
            ["李雷", 13800138000, datetime.date(1988, 2, 29), "OLD-001"],
        ]
    )
    job = new_job(shop, manager, content, name="whatever.csv")

    done = check_then_import(job)

    assert done.created_count == 1
    member = members(shop)["+8613800138000"]
    assert (member.birthday_month, member.birthday_day, member.birth_year) == (
        2,
        29,
        1988,
    )
    assert member.member_code == "OLD-001"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.4\x00\x01\x02binary", "neither a CSV nor an Excel"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "neither a CSV nor an Excel"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old excel", "old Excel file"),
        (b"name,phone\n\xff\xfe\xfa,1\n", "could not be read"),
        (b"", "empty"),
        (b"name,phone\n", "no rows"),
    ],
    ids=["pdf", "png", "xls", "undecodable", "empty", "header-only"],
)
def test_a_file_that_is_not_a_readable_spreadsheet_is_refused(
    shop, manager, content, message
):
    with pytest.raises(ValidationError) as refused:
        new_job(shop, manager, content)

    assert message in " ".join(refused.value.messages)
    with shop_scope(shop):
        assert not ImportJob.objects.exists()


REQUIRED_PHONE = "手机号码\uff08必填\uff09"  # full-width brackets


def test_headers_in_english_and_chinese_are_mapped_to_fields(shop):
    mapping = imports.suggest_mapping(
        [
            "姓名",
            REQUIRED_PHONE,
            "E-mail",
            "出生日期",
            "会员卡号",
            "性别",
            "Whatever",
        ],
        kind="members",
    )

    assert mapping == {
        "姓名": "name",
        REQUIRED_PHONE: "phone",
        "E-mail": "email",
        "出生日期": "birthday",
        "会员卡号": "member_code",
        "性别": "gender",
    }


def test_a_mapping_without_any_member_key_is_refused(shop, manager):
    job = new_job(shop, manager, HEADER + ROWS)

    with pytest.raises(ValidationError), shop_scope(shop):
        imports.configure_import(
            job=job,
            mapping={"姓名": "name"},
            duplicates="skip",
            mode="valid_only",
            acting_user=manager,
        )


# Dry run, duplicates, modes ---------------------------------------------------


def test_a_dry_run_counts_and_shows_rows_but_writes_nothing(shop, manager):
    job = new_job(shop, manager, HEADER + ROWS + "Bad,12345,,,,\n")

    checked = run(job, dry_run=True)

    assert checked.status == ImportStatus.PREVIEWED
    assert checked.options["preview"]["created"] == 2
    assert checked.options["preview"]["errors"] == 1
    assert [r["row"] for r in checked.options["preview"]["rows"]] == [2, 3]
    assert checked.processed_rows == checked.total_rows == 3
    assert members(shop) == {}
    with shop_scope(shop):
        assert not MemberChange.objects.exists()
    assert not OutboxEvent.objects.unscoped().exists()


def existing_member(shop, **fields):
    with shop_scope(shop):
        return Member.objects.create(
            shop=shop, member_code="EXIST001", phone="+8613800138000", **fields
        )


def test_duplicates_are_skipped_when_the_user_says_skip(shop, manager):
    existing_member(shop, name="Old name")
    job = new_job(shop, manager, HEADER + ROWS)

    done = check_then_import(job, duplicates="skip")

    assert (done.created_count, done.updated_count, done.skipped_count) == (1, 0, 1)
    assert members(shop)["+8613800138000"].name == "Old name"


def test_duplicates_are_updated_and_audited_when_the_user_says_update(shop, manager):
    member = existing_member(shop, name="Old name")
    job = new_job(shop, manager, HEADER + ROWS)

    done = check_then_import(job, duplicates="update")

    assert (done.created_count, done.updated_count) == (1, 1)
    updated = members(shop)["+8613800138000"]
    assert updated.name == "王小明"
    assert updated.member_code == "EXIST001"
    with shop_scope(shop):
        change = MemberChange.objects.get(member=member, action="updated")
        assert change.changes["name"] == ["Old name", "王小明"]
        assert ConsentChange.objects.filter(member=member, granted=True).exists()
    assert OutboxEvent.objects.unscoped().filter(topic="member.updated").count() == 1


def test_new_members_get_codes_audit_lines_consent_records_and_events(shop, manager):
    job = new_job(shop, manager, HEADER + ROWS)

    check_then_import(job)

    with shop_scope(shop):
        created = list(Member.objects.all())
        assert {len(m.member_code) for m in created} == {8}
        assert {m.source for m in created} == {"import"}
        assert MemberChange.objects.filter(action="imported").count() == 2
        assert ConsentChange.objects.count() == 2
    assert OutboxEvent.objects.unscoped().filter(topic="member.created").count() == 2


BAD_ROWS = (
    HEADER
    + "Good One,13800138000,good@example.com,1990-05-31,男,是\n"
    + "Bad Phone,12345,bad@example.com,1990-05-31,男,是\n"
    + "Bad Day,13900139000,day@example.com,02-30,女,否\n"
    + "Same Phone,13800138000,other@example.com,,,\n"
)


def test_all_or_nothing_with_one_bad_row_writes_nothing(shop, manager):
    job = new_job(shop, manager, BAD_ROWS)

    done = check_then_import(job, mode="all_or_nothing")

    assert done.status == ImportStatus.FAILED
    assert done.error_count == 3
    assert members(shop) == {}


def test_valid_rows_only_writes_the_good_rows_and_reports_each_bad_one(shop, manager):
    job = new_job(shop, manager, BAD_ROWS)

    done = check_then_import(job, mode="valid_only")

    assert done.status == ImportStatus.DONE
    assert set(members(shop)) == {"+8613800138000"}
    assert done.errors == [
        {"row": 3, "column": "手机", "message": "“12345” is not a valid phone number."},
        {"row": 4, "column": "生日", "message": "There is no such day in that month."},
        {"row": 5, "column": "手机", "message": "Row 2 already has “+8613800138000”."},
    ]
    lines = list(imports.error_rows(done))
    assert lines[0] == ["Row", "Column", "Problem"]
    assert lines[1] == [3, "手机", "“12345” is not a valid phone number."]


def test_the_real_run_needs_a_dry_run_first(shop, manager):
    job = new_job(shop, manager, HEADER + ROWS)

    with pytest.raises(ValidationError), shop_scope(shop):
        imports.start_import(job=job, dry_run=False, acting_user=manager)


def test_a_job_run_twice_imports_once(shop, manager):
    job = new_job(shop, manager, HEADER + ROWS)
    done = check_then_import(job)

    again = run_import(shop_id=shop.pk, job_id=job.pk)

    assert again == "not queued"
    assert done.created_count == 2
    assert len(members(shop)) == 2
    with shop_scope(shop), pytest.raises(ValidationError):
        imports.start_import(job=done, dry_run=True, acting_user=manager)


def test_progress_reaches_the_total_over_many_chunks(shop, manager, monkeypatch):
    monkeypatch.setattr("members.services.imports.jobs.CHUNK_SIZE", 7)
    rows = "".join(f"M{i},1380013{i:04d},,,,\n" for i in range(50))
    job = new_job(shop, manager, HEADER + rows)
    seen = []
    original = imports.jobs.Totals.save_progress

    def spy(self, job):
        original(self, job)
        seen.append(ImportJob.objects.get(pk=job.pk).processed_rows)

    monkeypatch.setattr(imports.jobs.Totals, "save_progress", spy)

    done = check_then_import(job)

    assert done.processed_rows == done.total_rows == 50
    assert done.created_count == 50
    assert seen[:8] == [7, 14, 21, 28, 35, 42, 49, 50]


def test_a_home_store_is_found_by_code_and_an_unknown_store_is_an_error(shop, manager):
    store = StoreFactory(shop=shop, code="SH01", name="Jing'an")
    content = "手机,门店\n13800138000,sh01\n13900139000,NOPE\n"
    job = new_job(shop, manager, content)

    done = check_then_import(job)

    assert members(shop)["+8613800138000"].home_store_id == store.pk
    assert done.errors[0]["column"] == "门店"


def test_an_import_never_touches_another_shops_members(shop, other_shop, manager):
    with shop_scope(other_shop):
        theirs = Member.objects.create(
            shop=other_shop, member_code="THEIRS01", phone="+8613800138000", name="B"
        )
    job = new_job(shop, manager, HEADER + ROWS)

    done = check_then_import(job, duplicates="update")

    assert done.created_count == 2
    with shop_scope(other_shop):
        theirs.refresh_from_db()
        assert theirs.name == "B"
        assert Member.objects.count() == 1


def test_bulk_events_are_one_insert_and_one_relay_run_after_the_commit(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries, monkeypatch
):
    from shops.services.events import emit_events

    kicked = []
    monkeypatch.setattr(
        "shops.services.events.outbox.kick_relay", lambda: kicked.append(1)
    )
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        django_assert_num_queries(1),
    ):
        emit_events(
            shop=shop, topic="member.created", payloads=[{"id": n} for n in range(5)]
        )

    assert len(callbacks) == 1
    assert kicked == [1]
    assert OutboxEvent.objects.unscoped().filter(shop=shop).count() == 5
