"""Opening balances through the members import: points and their expiry from
CSV and Excel become ledger credits and lots, checked in the dry run, reported
by row and column, never credited twice, and kept to the importing shop."""

import datetime
import io
import threading

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from members.models import ImportJob, ImportStatus, Member
from members.services import imports
from members.tasks.imports import run_import
from points import imports as opening
from points.models import (
    EntryKind,
    EntrySource,
    ExpiryMode,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsPolicy,
)
from points.services import ledger
from shops.models import OutboxEvent, Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, UserFactory
from tests.members.factories import MemberFactory
from tests.shops.webhook_receiver import tasks_in_process

pytestmark = pytest.mark.django_db

HEADER = "姓名,手机,积分,积分过期时间\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def manager(db):
    return UserFactory()


def today(shop) -> datetime.date:
    return timezone.now().astimezone(shop.zone).date()


def end_of(day: datetime.date, shop) -> datetime.datetime:
    """Points that expire on `day` are spendable until its last moment."""
    return datetime.datetime.combine(
        day + datetime.timedelta(days=1), datetime.time(), tzinfo=shop.zone
    )


def xlsx(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def new_job(shop, manager, content, *, name="members.csv"):
    if isinstance(content, str):
        content = content.encode()
    with shop_scope(shop):
        return imports.create_import_job(
            shop=shop,
            kind="members",
            upload=SimpleUploadedFile(name, content),
            acting_user=manager,
        )


def run(job, *, dry_run, duplicates="skip", mode="valid_only"):
    with shop_scope(job.shop):
        job = ImportJob.objects.get(pk=job.pk)
        imports.configure_import(
            job=job,
            mapping=job.mapping,
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
    assert checked.status == ImportStatus.PREVIEWED, checked.errors
    with shop_scope(job.shop):
        imports.start_import(job=checked, dry_run=False, acting_user=None)
    run_import(shop_id=job.shop_id, job_id=job.pk)
    with shop_scope(job.shop):
        return ImportJob.objects.get(pk=job.pk)


def balances(shop) -> dict[str, int]:
    """{phone: balance} of the shop's members with an account."""
    with shop_scope(shop):
        return dict(
            PointsAccount.objects.values_list("member__phone", "balance").order_by()
        )


def assert_ledger_adds_up(shop):
    with shop_scope(shop):
        for account in PointsAccount.objects.all():
            entries = PointsEntry.objects.filter(account=account)
            lots = PointsLot.objects.filter(account=account)
            assert account.balance == sum(e.points for e in entries)
            assert account.balance == sum(lot.remaining for lot in lots)
            assert account.lifetime_earned == account.balance


# The columns ------------------------------------------------------------------


def test_points_columns_are_offered_and_recognised_by_their_headers(shop):
    with shop_scope(shop):
        keys = {key for key, _label in imports.fields_for("members", shop=shop)}
        mapping = imports.suggest_mapping(
            ["手机", "积分", "积分过期时间", "Points", "Expiry date"],
            kind="members",
            shop=shop,
        )
    assert {"points", "points_expire_on"} <= keys
    assert mapping == {
        "手机": "phone",
        "积分": "points",
        "积分过期时间": "points_expire_on",
    }
    # The purchases import is left as it was.
    assert "points" not in {k for k, _l in imports.fields_for("purchases", shop=shop)}


# Importing ----------------------------------------------------------------------


def test_a_csv_with_points_and_expiry_gives_balances_entries_and_lots(shop, manager):
    expire_on = today(shop) + datetime.timedelta(days=90)
    content = HEADER + (
        f"王小明,13800138000,1200,{expire_on.isoformat()}\n"
        '李四,13900139000,"3,500",\n'
        "张三,13700137000,,\n"
    )
    job = new_job(shop, manager, content)

    done = check_then_import(job)

    assert done.status == ImportStatus.DONE
    assert done.created_count == 3
    assert balances(shop) == {"+8613800138000": 1200, "+8613900139000": 3500}
    with shop_scope(shop):
        entries = list(PointsEntry.objects.select_related("account__member"))
        assert {e.account.member.phone: e.points for e in entries} == {
            "+8613800138000": 1200,
            "+8613900139000": 3500,
        }
        for entry in entries:
            assert (entry.kind, entry.source) == (EntryKind.EARN, EntrySource.IMPORT)
            assert entry.total_after == entry.points
            assert entry.acting_user == manager
            assert entry.idempotency_key == (
                f"opening:{job.pk}:{entry.account.member_id}"
            )
        lots = {
            lot.account.member.phone: lot
            for lot in PointsLot.objects.select_related("account__member")
        }
    assert lots["+8613800138000"].expires_at == end_of(expire_on, shop)
    assert lots["+8613800138000"].remaining == 1200
    # No date in the file: the shop's policy (by default, the end of next year).
    assert lots["+8613900139000"].expires_at == end_of(
        datetime.date(today(shop).year + 1, 12, 31), shop
    )
    assert lots["+8613900139000"].available_at <= timezone.now()
    assert_ledger_adds_up(shop)
    # Integrators hear of each credit, as of any other.
    events = OutboxEvent.objects.unscoped().filter(topic="points.earned")
    assert sorted(
        (e.payload["entry"]["points"], e.payload["balance"]) for e in events
    ) == [
        (1200, 1200),
        (3500, 3500),
    ]
    assert {e.payload["entry"]["source"] for e in events} == {"import"}
    assert {e.shop_id for e in events} == {shop.pk}


def test_an_excel_file_with_number_and_date_cells_is_read_alike(shop, manager):
    expire_on = today(shop) + datetime.timedelta(days=10)
    content = xlsx(
        [
            ["手机", "会员积分", "有效期至"],
            ["13800138000", 250, datetime.datetime.combine(expire_on, datetime.time())],
            ["13900139000", 80.0, expire_on.isoformat()],
        ]
    )
    job = new_job(shop, manager, content, name="members.xlsx")

    done = check_then_import(job)

    assert done.status == ImportStatus.DONE, done.errors
    assert balances(shop) == {"+8613800138000": 250, "+8613900139000": 80}
    with shop_scope(shop):
        assert {lot.expires_at for lot in PointsLot.objects.all()} == {
            end_of(expire_on, shop)
        }


def test_the_shop_policy_gives_the_expiry_of_rows_without_a_date(shop, manager):
    PointsPolicy.objects.unscoped().create(
        shop=shop, expiry=ExpiryMode.MONTHS, expiry_months=6
    )
    other = new_job(shop, manager, "手机,积分\n13800138000,10\n")
    check_then_import(other)
    PointsPolicy.objects.unscoped().filter(shop=shop).update(expiry=ExpiryMode.NEVER)
    never = new_job(shop, manager, "手机,积分\n13900139000,20\n")
    check_then_import(never)

    with shop_scope(shop):
        lots = {
            lot.account.member.phone: lot.expires_at
            for lot in PointsLot.objects.select_related("account__member")
        }
    six_months = lots["+8613800138000"].astimezone(shop.zone).date()
    assert 181 <= (six_months - today(shop)).days <= 184
    assert lots["+8613900139000"] is None


# Dry run and bad values ------------------------------------------------------------


def test_the_dry_run_shows_points_per_row_and_writes_nothing(shop, manager):
    expire_on = today(shop) + datetime.timedelta(days=30)
    job = new_job(
        shop, manager, HEADER + f"王小明,13800138000,1200,{expire_on.isoformat()}\n"
    )

    checked = run(job, dry_run=True)

    assert checked.status == ImportStatus.PREVIEWED
    row = checked.options["preview"]["rows"][0]
    assert row["action"] == "create"
    assert row["values"]["points"] == 1200
    assert row["values"]["points_expire_on"] == expire_on.isoformat()
    with shop_scope(shop):
        assert not Member.objects.exists()
        assert not PointsAccount.objects.exists()
        assert not PointsEntry.objects.exists()


BAD = HEADER + (
    "好,13800138000,100,\n"  # row 2: fine
    "负,13800138001,-5,\n"  # row 3
    "零,13800138002,0,\n"  # row 4
    "字,13800138003,lots,\n"  # row 5
    "旧,13800138004,100,2000-01-01\n"  # row 6
    "小数,13800138005,12.5,\n"  # row 7
    "无,13800138006,,2099-01-01\n"  # row 8: an expiry date without points
    "日,13800138007,100,not a date\n"  # row 9
)


def test_bad_points_and_dates_are_reported_by_row_and_column(shop, manager):
    job = new_job(shop, manager, BAD)

    checked = run(job, dry_run=True)

    assert checked.error_count == 7
    found = {(e["row"], e["column"]) for e in checked.errors}
    assert found == {
        (3, "积分"),
        (4, "积分"),
        (5, "积分"),
        (6, "积分过期时间"),
        (7, "积分"),
        (8, "积分过期时间"),
        (9, "积分过期时间"),
    }
    messages = {e["row"]: e["message"] for e in checked.errors}
    assert "-5" in messages[3]
    assert messages[5] == "“lots” is not a whole number of points."
    assert "2000-01-01" in messages[6]
    assert checked.options["preview"]["created"] == 1


def test_valid_rows_only_credits_the_good_rows(shop, manager):
    job = new_job(shop, manager, BAD)

    done = check_then_import(job, mode="valid_only")

    assert done.status == ImportStatus.DONE
    assert done.error_count == 7
    assert balances(shop) == {"+8613800138000": 100}
    with shop_scope(shop):
        assert set(Member.objects.values_list("phone", flat=True)) == {"+8613800138000"}


def test_all_or_nothing_with_a_bad_value_writes_nothing(shop, manager):
    job = new_job(shop, manager, BAD)

    done = check_then_import(job, mode="all_or_nothing")

    assert done.status == ImportStatus.FAILED
    with shop_scope(shop):
        assert not Member.objects.exists()
        assert not PointsAccount.objects.exists()
        assert not PointsEntry.objects.exists()
        assert not PointsLot.objects.exists()


def test_all_or_nothing_failing_half_way_keeps_no_member_and_no_point(
    shop, manager, monkeypatch
):
    monkeypatch.setattr("members.services.imports.jobs.CHUNK_SIZE", 1)
    real = opening.write_opening_balances
    calls = []

    def fail_on_second_chunk(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(opening, "write_opening_balances", fail_on_second_chunk)
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n乙,13900139000,20,\n")

    done = check_then_import(job, mode="all_or_nothing")

    assert len(calls) == 2
    assert done.status == ImportStatus.FAILED
    with shop_scope(shop):
        assert not Member.objects.exists()
        assert not PointsEntry.objects.exists()
        assert not PointsAccount.objects.exists()


# Never twice ------------------------------------------------------------------------


def test_running_the_same_import_again_does_not_double_the_points(shop, manager):
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n乙,13900139000,20,\n")
    done = check_then_import(job, duplicates="update")
    assert balances(shop) == {"+8613800138000": 10, "+8613900139000": 20}

    # The task delivered again (a worker lost after the work was committed):
    # the members are now matches to update, and their credits are already in.
    ImportJob.objects.unscoped().filter(pk=done.pk).update(status=ImportStatus.QUEUED)
    assert run_import(shop_id=shop.pk, job_id=job.pk) == ImportStatus.DONE

    assert balances(shop) == {"+8613800138000": 10, "+8613900139000": 20}
    with shop_scope(shop):
        assert PointsEntry.objects.count() == 2
        assert PointsLot.objects.count() == 2
    assert_ledger_adds_up(shop)
    assert OutboxEvent.objects.unscoped().filter(topic="points.earned").count() == 2


def test_writing_the_same_rows_twice_credits_once(shop, manager):
    member = MemberFactory(shop=shop)
    rows = [(member.pk, {"points": 40})]

    with shop_scope(shop):
        first = opening.write_opening_balances(shop=shop, rows=rows, job_id=7)
        second = opening.write_opening_balances(shop=shop, rows=rows, job_id=7)
        # Another import is another opening balance.
        third = opening.write_opening_balances(shop=shop, rows=rows, job_id=8)
        account = PointsAccount.objects.get(member=member)

    assert (first, second, third) == (1, 0, 1)
    assert account.balance == 80


def test_updating_existing_members_adds_their_opening_balance_once(shop, manager):
    unchanged = MemberFactory(shop=shop, name="甲", phone="+8613800138000")
    renamed = MemberFactory(shop=shop, name="Old", phone="+8613900139000")
    with shop_scope(shop):
        opening.write_opening_balances(
            shop=shop, rows=[(renamed.pk, {"points": 5})], job_id=999
        )
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n乙,13900139000,20,\n")

    checked = run(job, dry_run=True, duplicates="update")
    assert checked.options["preview"]["updated"] == 2
    assert {r["values"]["points"] for r in checked.options["preview"]["rows"]} == {
        10,
        20,
    }
    with shop_scope(shop):
        imports.start_import(job=checked, dry_run=False, acting_user=None)
    run_import(shop_id=shop.pk, job_id=job.pk)

    with shop_scope(shop):
        done = ImportJob.objects.get(pk=job.pk)
        assert (done.created_count, done.updated_count) == (0, 2)
        assert Member.objects.get(pk=renamed.pk).name == "乙"
        assert Member.objects.count() == 2
        latest = PointsEntry.objects.filter(account__member=renamed).first()
    assert balances(shop) == {"+8613800138000": 10, "+8613900139000": 25}
    assert latest.total_after == 25
    assert_ledger_adds_up(shop)
    assert unchanged.pk != renamed.pk


def test_skipped_members_get_no_points(shop, manager):
    MemberFactory(shop=shop, phone="+8613800138000")
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n乙,13900139000,20,\n")

    done = check_then_import(job, duplicates="skip")

    assert (done.created_count, done.skipped_count) == (1, 1)
    assert balances(shop) == {"+8613900139000": 20}


def test_a_negative_balance_is_paid_back_before_a_lot_forms(shop):
    member = MemberFactory(shop=shop)
    PointsAccount.objects.unscoped().create(shop=shop, member=member, balance=-30)

    with shop_scope(shop):
        opening.write_opening_balances(
            shop=shop, rows=[(member.pk, {"points": 100})], job_id=1
        )
        account = PointsAccount.objects.get(member=member)
        lot = PointsLot.objects.get(account=account)
        entry = PointsEntry.objects.get(account=account)

    assert account.balance == 70
    assert (lot.points, lot.remaining) == (100, 70)
    assert (entry.points, entry.total_after) == (100, 70)


def test_the_import_brings_a_return_window_that_ended_up_to_date(shop):
    member = MemberFactory(shop=shop)
    account = PointsAccount.objects.unscoped().create(
        shop=shop, member=member, balance=50, pending=50, lifetime_earned=50
    )
    earned = PointsEntry.objects.unscoped().create(
        shop=shop,
        account=account,
        kind=EntryKind.EARN,
        points=50,
        total_after=50,
        source=EntrySource.PURCHASE,
    )
    PointsLot.objects.unscoped().create(
        shop=shop,
        account=account,
        entry=earned,
        points=50,
        remaining=50,
        available_at=timezone.now() - datetime.timedelta(minutes=1),
    )

    with shop_scope(shop):
        opening.write_opening_balances(
            shop=shop, rows=[(member.pk, {"points": 10})], job_id=1
        )
        account.refresh_from_db()

    assert (account.balance, account.pending, account.lifetime_earned) == (60, 0, 60)


# Shops ------------------------------------------------------------------------------


def test_an_import_credits_only_its_own_shop(shop, other_shop, manager):
    theirs = MemberFactory(shop=other_shop, phone="+8613800138000")
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n")

    done = check_then_import(job, duplicates="update")

    assert done.created_count == 1  # the other shop's member is not a match
    assert balances(shop) == {"+8613800138000": 10}
    assert balances(other_shop) == {}
    assert not PointsAccount.objects.unscoped().filter(member=theirs).exists()
    assert set(PointsEntry.objects.unscoped().values_list("shop_id", flat=True)) == {
        shop.pk
    }


def test_another_shops_task_cannot_run_the_import(shop, other_shop, manager):
    job = new_job(shop, manager, HEADER + "甲,13800138000,10,\n")
    checked = run(job, dry_run=True)
    with shop_scope(shop):
        imports.start_import(job=checked, dry_run=False, acting_user=None)

    with shop_scope(other_shop):
        assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert run_import(shop_id=other_shop.pk, job_id=job.pk) == "not queued"

    assert balances(shop) == {}
    assert ImportJob.objects.unscoped().get(pk=job.pk).status == ImportStatus.QUEUED


# With the rest of the ledger --------------------------------------------------------


# The ledger's debit updates lots with PostgreSQL-only SQL.
@pytest.mark.postgres
def test_imported_points_are_spent_by_their_expiry_like_any_other(shop):
    member = MemberFactory(shop=shop)
    soon = today(shop) + datetime.timedelta(days=10)
    with shop_scope(shop):
        ledger.credit(
            member=member,
            points=100,
            kind=EntryKind.EARN,
            source=EntrySource.CAMPAIGN,
        )
        opening.write_opening_balances(
            shop=shop,
            rows=[(member.pk, {"points": 500, "points_expire_on": soon})],
            job_id=3,
        )
        ledger.debit(
            member=member,
            points=200,
            kind=EntryKind.REDEEM,
            source=EntrySource.REWARD,
        )
        remaining = {
            lot.entry.source: lot.remaining
            for lot in PointsLot.objects.select_related("entry")
        }
        account = PointsAccount.objects.get(member=member)

    # The imported lot expires first, so it is spent first.
    assert remaining == {EntrySource.IMPORT: 300, EntrySource.CAMPAIGN: 100}
    assert account.balance == 400
    assert account.lifetime_earned == 600


def _in_transaction(call):
    def run():
        with transaction.atomic():
            return call()

    return run


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_and_a_redemption_at_once_lose_no_point(shop):
    member = MemberFactory(shop=shop)
    with shop_scope(shop):
        ledger.credit(
            member=member, points=100, kind=EntryKind.EARN, source=EntrySource.CAMPAIGN
        )
    start = threading.Barrier(3)
    results: list = [None] * 3
    calls = [
        _in_transaction(
            lambda: opening.write_opening_balances(
                shop=shop, rows=[(member.pk, {"points": 500})], job_id=11
            )
        ),
        # The same import's rows twice at once (a redelivered task): once only.
        _in_transaction(
            lambda: opening.write_opening_balances(
                shop=shop, rows=[(member.pk, {"points": 500})], job_id=11
            )
        ),
        lambda: ledger.debit(
            member=member, points=80, kind=EntryKind.REDEEM, source=EntrySource.REWARD
        ),
    ]

    def run(index, call):
        try:
            with shop_scope(shop):
                start.wait()
                results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results[:2] in ([0, 1], [1, 0]), results
    assert not isinstance(results[2], Exception), results[2]
    with shop_scope(shop):
        account = PointsAccount.objects.get(member=member)
        assert PointsEntry.objects.filter(source=EntrySource.IMPORT).count() == 1
    assert account.balance == 100 + 500 - 80
    assert_ledger_adds_up_with_spending(shop)


def assert_ledger_adds_up_with_spending(shop):
    with shop_scope(shop):
        for account in PointsAccount.objects.all():
            entries = PointsEntry.objects.filter(account=account)
            lots = PointsLot.objects.filter(account=account)
            assert account.balance == sum(e.points for e in entries)
            assert account.balance == sum(lot.remaining for lot in lots)


# The import pages -------------------------------------------------------------------


@pytest.fixture
def staff_client(client, shop):
    membership = MembershipFactory(shop=shop, role=Role.MANAGER, user__is_staff=True)
    client.force_login(membership.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def admin_url(name, *args):
    return reverse(f"admin:members_importjob_{name}", args=args)


def test_a_manager_imports_opening_balances_in_the_admin(
    staff_client, shop, django_capture_on_commit_callbacks
):
    content = HEADER + "王小明,13800138000,1200,\nBad,13900139000,-3,\n"
    with tasks_in_process():
        uploaded = staff_client.post(
            admin_url("add"),
            {"kind": "members", "file": SimpleUploadedFile("m.csv", content.encode())},
        )
        job = ImportJob.objects.unscoped().get(shop=shop)
        assert uploaded.status_code == 302
        page = staff_client.get(admin_url("change", job.pk))
        assert "Points (opening balance)" in page.text
        assert 'value="points" selected' in page.text
        assert 'value="points_expire_on" selected' in page.text

        form = {"duplicates": "skip", "mode": "valid_only", "action": "check"}
        for index, header in enumerate(job.options["headers"]):
            form[f"column_{index}"] = job.mapping.get(header, "")
        with django_capture_on_commit_callbacks(execute=True):
            staff_client.post(admin_url("change", job.pk), form)
        page = staff_client.get(admin_url("change", job.pk))
        assert "points: 1200" in page.text
        assert "Rows with problems: 1" in page.text
        assert "not -3" in page.text
        assert balances(shop) == {}

        with django_capture_on_commit_callbacks(execute=True):
            staff_client.post(admin_url("change", job.pk), {"action": "import"})

    assert balances(shop) == {"+8613800138000": 1200}


def test_another_shops_import_cannot_be_run_from_the_admin(
    staff_client, shop, other_shop, manager
):
    theirs = new_job(other_shop, manager, HEADER + "甲,13800138000,10,\n")
    checked = run(theirs, dry_run=True)

    response = staff_client.post(admin_url("change", checked.pk), {"action": "import"})

    assert response.status_code == 404
    assert ImportJob.objects.unscoped().get(pk=theirs.pk).status == (
        ImportStatus.PREVIEWED
    )
    assert balances(other_shop) == {}
