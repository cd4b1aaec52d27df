"""The import pages: upload, map, check, import, progress, errors; managers and
owners only; another shop's import is a 404."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import ImportJob, ImportStatus, Member
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory
from tests.members.test_imports import new_job
from tests.shops.webhook_receiver import tasks_in_process

pytestmark = pytest.mark.django_db

CSV = (
    "姓名,手机,生日\n王小明,13800138000,1990-05-31\nBad,12345,\nLi,13900139000,13-01\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def staff_client(client, shop):
    def login(role=Role.MANAGER):
        membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
        client.force_login(membership.user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return login


def url(name, *args):
    return reverse(f"admin:members_importjob_{name}", args=args)


def the_job(shop):
    with shop_scope(shop):
        return ImportJob.objects.get()


def mapping_post(job, **extra):
    data = {"duplicates": "skip", "mode": "valid_only", "action": "check"}
    for index, header in enumerate(job.options["headers"]):
        data[f"column_{index}"] = job.mapping.get(header, "")
    return {**data, **extra}


def test_a_manager_uploads_checks_and_imports_a_file(
    staff_client, shop, django_capture_on_commit_callbacks
):
    with tasks_in_process():
        a_manager_uploads_checks_and_imports_a_file(
            staff_client, shop, django_capture_on_commit_callbacks
        )


def a_manager_uploads_checks_and_imports_a_file(
    staff_client, shop, django_capture_on_commit_callbacks
):
    client = staff_client(Role.MANAGER)

    uploaded = client.post(
        url("add"),
        {"kind": "members", "file": SimpleUploadedFile("m.csv", CSV.encode())},
    )
    job = the_job(shop)
    assert uploaded.status_code == 302
    assert uploaded["Location"] == url("change", job.pk)
    page = client.get(url("change", job.pk))
    assert "Check the file (dry run)" in page.text
    assert 'value="phone" selected' in page.text

    # As without a broker: the task runs in-process right after the commit.
    with django_capture_on_commit_callbacks(execute=True):
        checked = client.post(url("change", job.pk), mapping_post(job))
    assert checked.status_code == 302
    page = client.get(url("change", job.pk))
    assert "Would create: 1" in page.text
    assert "Rows with problems: 2" in page.text
    assert "is not a valid phone number" in page.text
    with shop_scope(shop):
        assert not Member.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("change", job.pk), {"action": "import"})
    page = client.get(url("change", job.pk))
    assert "Created: 1" in page.text
    with shop_scope(shop):
        assert Member.objects.get().name == "王小明"

    errors = client.get(url("errors", job.pk))
    body = b"".join(errors.streaming_content).decode("utf-8")
    assert body.startswith("\ufeffRow,Column,Problem")
    assert "3,手机," in body
    assert "4,生日," in body


def test_a_file_that_is_not_a_spreadsheet_is_a_form_error(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(
        url("add"),
        {"kind": "members", "file": SimpleUploadedFile("x.csv", b"\x89PNG\x00\x01")},
    )

    assert response.status_code == 200
    assert "neither a CSV nor an Excel" in response.text
    with shop_scope(shop):
        assert not ImportJob.objects.exists()


def test_the_status_endpoint_shows_progress_and_asks_for_the_page_when_done(
    staff_client, shop
):
    client = staff_client(Role.MANAGER)
    job = new_job(shop, None, CSV)
    with shop_scope(shop):
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.RUNNING, processed_rows=2
        )

    running = client.get(url("status", job.pk))

    assert "2 of 3 rows" in running.text
    assert 'hx-trigger="every 1s"' in running.text
    assert "HX-Refresh" not in running.headers

    with shop_scope(shop):
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.DONE)
    done = client.get(url("status", job.pk))
    assert done.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in done.text


def test_the_page_of_a_running_import_polls_its_progress(staff_client, shop):
    client = staff_client(Role.MANAGER)
    job = new_job(shop, None, CSV)
    with shop_scope(shop):
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)

    page = client.get(url("change", job.pk))

    assert url("status", job.pk) in page.text
    assert "Waiting to start" in page.text
    assert "Check the file (dry run)" not in page.text


def test_a_clerk_may_not_import(staff_client, shop):
    client = staff_client(Role.CLERK)
    job = new_job(shop, None, CSV)

    assert client.get(url("add")).status_code == 403
    assert client.get(url("change", job.pk)).status_code == 403
    assert client.get(url("errors", job.pk)).status_code == 403
    assert client.get(url("status", job.pk)).status_code == 403


def test_another_shops_import_is_not_found(staff_client, shop, other_shop):
    client = staff_client(Role.OWNER)
    theirs = new_job(other_shop, None, CSV)

    for name in ("change", "status", "errors"):
        assert client.get(url(name, theirs.pk)).status_code == 404
    assert (
        client.post(url("change", theirs.pk), {"action": "import"}).status_code == 404
    )
