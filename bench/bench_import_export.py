"""Import of members from a CSV file, and the streamed member export.

1. Import: a CSV of N members (100,000 at full size; Chinese and English
   names, phones, emails, birthdays, a few bad rows) through the import
   service as the admin runs it: `create_import_job`, `configure_import`,
   `start_import` and the task's `run_import_job` in-process, the check (dry
   run) and then the import (valid rows only). Target: under 60 s. Baseline:
   `Member.objects.bulk_create` of the same rows (no checks, no duplicates
   look-up, no audit): what the rows cost the database through Django.
   The outbox hand-over is stubbed (as if a broker accepted the messages), so
   the figure is the import's own work, not the consumers'.
2. Export: the bench shop's members as CSV through `member_export` +
   `csv_chunks` (what the streamed download sends), for a tenth of the rows
   and for all of them: time, peak Python allocations (tracemalloc) and the
   growth of the peak RSS. Memory must not grow with the rows. Baseline for
   time: PostgreSQL's `COPY (SELECT ...) TO STDOUT` of the same columns.
"""

from __future__ import annotations

import csv
import io
import random
import time
import tracemalloc
from pathlib import Path
from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from harness import env_int, reproduce, scale, skip_unless_postgres
from members_data import dataset

from members.models import ImportJob, Member
from shops.models import Role, StaffMembership, User
from shops.services import tenants
from shops.tenancy import shop_scope

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
ENGLISH = ["Amy Chen", "Ben Wong", "Chloe Lee", "David Lam", "Emma Ho", "Frank Yip"]


def import_rows() -> int:
    return env_int("BENCH_IMPORT_ROWS", 100_000 if scale() >= 1 else 10_000)


def members_csv(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["手机号", "姓名", "email", "birthday", "gender", "notes"])
    for n in range(rows):
        if rng.random() < 0.8:
            name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))
        else:
            name = rng.choice(ENGLISH)
        phone = f"13{n % 10}{(n * 7_919_111) % 100_000_000:08d}"
        email = f"m{n}@example.com" if rng.random() < 0.4 else ""
        birthday = f"{rng.randint(1960, 2005)}-{rng.randint(1, 12):02d}-" + (
            f"{rng.randint(1, 28):02d}"
        )
        if n % 1000 == 999:
            phone = "12-34"  # a bad row now and then: reported, not imported
        gender = rng.choice(("男", "女", "", "F", "M"))
        writer.writerow([phone, name, email, birthday, gender, ""])
    return buffer.getvalue().encode("utf-8")


def owner_of(shop) -> User:
    user = User.objects.create_user(
        username=f"bench-importer-{shop.pk}-{time.time_ns()}", password=None
    )
    StaffMembership.objects.unscoped().create(shop=shop, user=user, role=Role.OWNER)
    return user


def stub_hand_over():
    """Publishing to a broker sends no SQL; do not run the consumers inline."""
    return mock.patch.multiple(
        "shops.services.events.outbox",
        _publish=mock.DEFAULT,
        kick_relay=mock.DEFAULT,
    )


def bench_import() -> None:
    from members.services.imports import (
        configure_import,
        create_import_job,
        run_import_job,
        start_import,
    )

    rows = import_rows()
    data = members_csv(rows)
    print(f"  CSV: {rows:,} rows, {len(data) / 1e6:.1f} MB (1 bad phone per 1000)")
    shop = tenants.create_shop(name="Bench import", slug=f"bench-import-{rows}")
    user = owner_of(shop)
    with stub_hand_over(), shop_scope(shop):
        started = time.perf_counter()
        upload = SimpleUploadedFile("members.csv", data, content_type="text/csv")
        job = create_import_job(
            shop=shop, kind="members", upload=upload, acting_user=user
        )
        job = configure_import(
            job=job,
            mapping=job.mapping,
            duplicates="skip",
            mode="valid_only",
            acting_user=user,
        )
        upload_took = time.perf_counter() - started
        print(f"  mapping suggested: {job.mapping}")

        with mock.patch("members.services.imports.jobs._enqueue"):
            start_import(job=job, dry_run=True, acting_user=user)
        started = time.perf_counter()
        status = run_import_job(shop=shop, job_id=job.pk)
        check_took = time.perf_counter() - started
        assert status == "previewed", status

        with mock.patch("members.services.imports.jobs._enqueue"):
            start_import(
                job=ImportJob.objects.get(pk=job.pk), dry_run=False, acting_user=user
            )
        started = time.perf_counter()
        status = run_import_job(shop=shop, job_id=job.pk)
        write_took = time.perf_counter() - started
        job = ImportJob.objects.get(pk=job.pk)
        created = Member.objects.count()
    print(
        f"  import job: {status}; {job.created_count:,} created, "
        f"{job.error_count:,} rows with errors, {created:,} members in the shop"
    )

    baseline_took = bulk_create_baseline(data, created)
    total = upload_took + check_took + write_took
    print(f"\nImport of {rows:,} member rows (target < 60 s)")
    print(f"  {'bulk_create of the same rows (baseline)':46} {baseline_took:8.2f} s")
    print(f"  {'upload + suggested mapping':46} {upload_took:8.2f} s")
    print(f"  {'check (dry run)':46} {check_took:8.2f} s")
    print(
        f"  {'import (valid rows only)':46} {write_took:8.2f} s   "
        f"{write_took / baseline_took:.2f}x baseline"
    )
    print(
        f"  {'total: upload, check and import':46} {total:8.2f} s   "
        f"{rows / total:,.0f} rows/s"
    )


def bulk_create_baseline(data: bytes, rows: int) -> float:
    """The same members written with bulk_create in another shop, unchecked."""
    shop = tenants.create_shop(
        name="Bench import baseline", slug=f"bench-import-base-{rows}"
    )
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    next(reader)
    started = time.perf_counter()
    members = []
    for number, (phone, name, email, birthday, _gender, _notes) in enumerate(reader):
        if not phone.isdigit():
            continue
        year, month, day = (int(x) for x in birthday.split("-"))
        members.append(
            Member(
                shop=shop,
                member_code=f"B{number:07d}",
                name=name,
                phone=f"+86{phone}",
                phone_last4=phone[-4:],
                email=email,
                birthday_month=month,
                birthday_day=day,
                birth_year=year,
                source="import",
            )
        )
    Member.objects.unscoped().bulk_create(members, batch_size=2000)
    return time.perf_counter() - started


def vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def export_once(shop, queryset, *, trace: bool) -> tuple[int, int, float, int]:
    """Stream the export to nowhere: bytes, rows, seconds, peak bytes."""
    from members.services.exports import csv_chunks, member_export

    export = member_export(shop=shop, queryset=queryset, mask_phones=True)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    size = 0
    for chunk in csv_chunks(export):
        size += len(chunk)
    took = time.perf_counter() - started
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return size, took, peak


def copy_baseline(shop, last_id: int) -> float:
    """COPY of the same rows' main columns to a null sink: the database floor."""
    sink = io.StringIO()
    sql = (
        f"COPY (SELECT member_code, name, phone, email, birthday_month, "  # noqa: S608
        f"birthday_day, birth_year, gender, status, source, joined_at, total_spent, "
        f"order_count, last_purchase_at FROM {Member._meta.db_table} "
        f"WHERE shop_id = {int(shop.pk)} AND id <= {int(last_id)} ORDER BY id) "
        "TO STDOUT WITH CSV"
    )

    class Null(io.TextIOBase):
        def write(self, text):
            return len(text)

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(sql, Null())
    del sink
    return time.perf_counter() - started


def bench_export() -> None:
    with dataset() as shop:
        with connection.cursor() as cursor:
            table = Member._meta.db_table
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE shop_id = %s",  # noqa: S608
                [shop.pk],
            )
            full = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT id FROM {table} WHERE shop_id = %s "  # noqa: S608
                "ORDER BY id OFFSET %s LIMIT 1",
                [shop.pk, max(full // 10 - 1, 0)],
            )
            tenth = cursor.fetchone()[0]
        print(
            "\nExport of members as CSV, streamed (phones masked); peak memory "
            "must not grow with the rows"
        )
        print(
            f"  {'rows':>10} {'COPY':>9} {'export':>9} {'ratio':>7} "
            f"{'MB out':>8} {'peak py':>9} {'peak RSS +':>11}"
        )
        for label, last in (("a tenth", tenth), ("all", None)):
            with shop_scope(shop):
                queryset = Member.objects.filter(shop=shop)
                if last is not None:
                    queryset = queryset.filter(pk__lte=last)
                rows = queryset.count()
            base = copy_baseline(shop, last if last is not None else 2**62)
            rss_ok = reset_peak_rss()
            before = vm_hwm_kb()
            size, took, _ = export_once(shop, queryset, trace=False)
            rss_growth = (vm_hwm_kb() - before) / 1024 if rss_ok else float("nan")
            _, _, peak = export_once(shop, queryset, trace=True)
            print(
                f"  {rows:>10,} {base:8.2f}s {took:8.2f}s {took / base:6.1f}x "
                f"{size / 1e6:8.1f} {peak / 1e6:7.2f}MB {rss_growth:9.1f}MB"
                f"   ({label})"
            )
        print(
            "  peak py: tracemalloc's peak of Python allocations while streaming;"
            " peak RSS +: growth of the process's peak resident memory"
        )


def main() -> None:
    if skip_unless_postgres("the import and export benchmark"):
        return
    bench_import()
    bench_export()
    reproduce("import_export")
