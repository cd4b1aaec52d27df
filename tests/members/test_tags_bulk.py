"""Tagging many members at once (services and the member list's actions), and
re-checking a member's rule tags after a completed purchase."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from members.admin.tag_actions import (
    add_tag_to_members,
    move_members_between_tags,
    remove_tag_from_members,
)
from members.events import PURCHASE_COMPLETED
from members.models import Member, MemberChange, MemberTag, TagJob
from members.services import tags as services
from shops.admin.base import ShopScopedAdmin
from shops.models import Role
from shops.services.events import emit_event
from tests.factories import MembershipFactory
from tests.members.factories import MemberFactory, TagFactory, TagRuleFactory
from tests.shops.webhook_receiver import tasks_in_process


def holders(tag):
    return set(
        MemberTag.objects.unscoped().filter(tag=tag).values_list("member", flat=True)
    )


@pytest.fixture
def vip(in_shop):
    return TagFactory(shop=in_shop, name="VIP")


def test_add_tag_to_a_filtered_list_counts_and_is_idempotent(in_shop, vip):
    gold = [MemberFactory(shop=in_shop, source="qr") for _ in range(3)]
    MemberFactory(shop=in_shop, source="counter")
    chosen = Member.objects.filter(source="qr")

    first = services.add_tag(shop=in_shop, members=chosen, tag=vip)
    again = services.add_tag(shop=in_shop, members=chosen, tag=vip)

    assert (first, again) == (3, 0)
    assert holders(vip) == {m.pk for m in gold}
    assert MemberChange.objects.filter(action="tag_added").count() == 3


def test_adding_by_hand_makes_a_rule_given_tag_stay(in_shop, vip):
    member = MemberFactory(shop=in_shop, total_spent=Decimal("500"))
    TagRuleFactory(tag=vip, params={"amount": "100.00"})
    services.apply_tag_rules(shop=in_shop)

    added = services.add_tag(shop=in_shop, members=Member.objects.all(), tag=vip)
    member.total_spent = Decimal("0")
    member.save()
    services.apply_tag_rules(shop=in_shop)

    assert added == 1
    assert holders(vip) == {member.pk}


def test_remove_and_move_count_the_members_that_had_the_tag(in_shop, vip):
    regular = TagFactory(shop=in_shop, name="Regular")
    members = [MemberFactory(shop=in_shop) for _ in range(4)]
    services.add_tag(
        shop=in_shop, members=Member.objects.filter(pk__in=[m.pk for m in members[:3]]),
        tag=regular,
    )  # fmt: skip

    moved = services.move_tag(
        shop=in_shop, members=Member.objects.all(), from_tag=regular, to_tag=vip
    )
    moved_again = services.move_tag(
        shop=in_shop, members=Member.objects.all(), from_tag=regular, to_tag=vip
    )
    removed = services.remove_tag(shop=in_shop, members=Member.objects.all(), tag=vip)

    assert (moved, moved_again, removed) == (3, 0, 3)
    assert holders(regular) == holders(vip) == set()
    assert MemberChange.objects.filter(action="tag_removed").count() == 6


def test_bulk_statements_do_not_grow_with_the_number_of_members(in_shop, vip):
    def statements(n):
        MemberTag.objects.all().delete()
        for _ in range(n):
            MemberFactory(shop=in_shop)
        with CaptureQueriesContext(connection) as queries:
            services.add_tag(shop=in_shop, members=Member.objects.all(), tag=vip)
            services.remove_tag(shop=in_shop, members=Member.objects.all(), tag=vip)
        return len(queries)

    assert statements(2) == statements(30)


def test_bulk_never_touches_another_shops_members(in_shop, vip, other_shop):
    theirs = MemberFactory(shop=other_shop)
    mine = MemberFactory(shop=in_shop)
    everyone = Member.objects.unscoped().all()

    services.add_tag(shop=in_shop, members=everyone, tag=vip)

    assert holders(vip) == {mine.pk}
    assert not MemberTag.objects.unscoped().filter(member=theirs).exists()


# The member list's actions -----------------------------------------------------


def action_request(shop, role, data):
    request = RequestFactory().post("/admin/members/member/?source=qr", data)
    request.user = MembershipFactory(shop=shop, role=role).user
    request.shop, request.role = shop, role
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def run(action, shop, role, queryset, **data):
    model_admin = ShopScopedAdmin(Member, admin.site)
    request = action_request(shop, role, {"action": action.__name__, **data})
    response = action(model_admin, request, queryset)
    return response, [str(m) for m in get_messages(request)]


def test_add_action_asks_for_the_tag_then_tags_all_filtered_rows(in_shop, vip):
    for _ in range(3):
        MemberFactory(shop=in_shop, source="qr")
    filtered = Member.objects.filter(source="qr")  # what "select all" hands over

    page, _ = run(add_tag_to_members, in_shop, Role.MANAGER, filtered)
    page.render()
    done, said = run(
        add_tag_to_members, in_shop, Role.MANAGER, filtered,
        apply="1", tag=vip.pk, select_across="1",
    )  # fmt: skip

    assert "3 members chosen" in page.content.decode()
    assert done is None
    assert said == ["3 members got the tag “VIP”."]
    assert len(holders(vip)) == 3


def test_move_and_remove_actions_report_counts(in_shop, vip):
    regular = TagFactory(shop=in_shop, name="Regular")
    for _ in range(2):
        MemberFactory(shop=in_shop)
    everyone = Member.objects.all()
    services.add_tag(shop=in_shop, members=everyone, tag=regular)

    _, moved = run(
        move_members_between_tags, in_shop, Role.OWNER, everyone,
        apply="1", from_tag=regular.pk, to_tag=vip.pk,
    )  # fmt: skip
    _, removed = run(
        remove_tag_from_members, in_shop, Role.OWNER, everyone, apply="1", tag=vip.pk
    )

    assert moved == ["Moved 2 members from “Regular” to “VIP”."]
    assert removed == ["Took “VIP” off 2 members."]


def test_a_clerk_cannot_run_the_tag_actions(in_shop, vip):
    MemberFactory(shop=in_shop)

    response, said = run(
        add_tag_to_members, in_shop, Role.CLERK, Member.objects.all(),
        apply="1", tag=vip.pk,
    )  # fmt: skip

    assert response is None
    assert said == ["Only managers and owners can tag members."]
    assert holders(vip) == set()


def test_the_action_form_offers_only_this_shops_tags(in_shop, vip, other_shop):
    theirs = TagFactory(shop=other_shop, name="Theirs")
    MemberFactory(shop=in_shop)

    page, said = run(
        add_tag_to_members, in_shop, Role.OWNER, Member.objects.all(),
        apply="1", tag=theirs.pk,
    )  # fmt: skip
    page.render()

    assert said == []
    assert "Theirs" not in page.content.decode()
    assert holders(theirs) == set()


# After a completed purchase ----------------------------------------------------


def test_a_completed_purchase_re_checks_that_members_rule_tags(
    in_shop, vip, django_capture_on_commit_callbacks
):
    buyer = MemberFactory(shop=in_shop, total_spent=Decimal("0"))
    bystander = MemberFactory(shop=in_shop, total_spent=Decimal("900"))
    TagRuleFactory(tag=vip, params={"amount": "100.00"})
    buyer.total_spent = Decimal("150")  # what completing the purchase keeps
    buyer.save()

    with (
        tasks_in_process(),
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        emit_event(
            shop=in_shop,
            topic=PURCHASE_COMPLETED,
            payload={"purchase": {"id": 1}, "member": {"id": buyer.pk}},
        )

    assert holders(vip) == {buyer.pk}
    assert bystander.pk not in holders(vip)


# Long lists, tagged by a worker --------------------------------------------------


@pytest.fixture
def long_from_3(monkeypatch):
    """Lists of 3 members or more count as long (a million in real shops)."""
    monkeypatch.setattr(services, "BACKGROUND_FROM", 3)


def test_a_long_list_is_tagged_by_a_worker_and_reported_as_a_job(
    in_shop, vip, long_from_3, django_capture_on_commit_callbacks
):
    chosen = [MemberFactory(shop=in_shop, source="qr") for _ in range(3)]
    MemberFactory(shop=in_shop, source="counter")

    with tasks_in_process(), django_capture_on_commit_callbacks(execute=True):
        done, said = run(
            add_tag_to_members, in_shop, Role.MANAGER,
            Member.objects.filter(source="qr"), apply="1", tag=vip.pk,
        )  # fmt: skip

    job = TagJob.objects.get()
    assert done is None
    assert said[0].startswith("3 members are being tagged in the background.")
    assert f"/admin/members/tagjob/{job.pk}/change/" in said[0]
    assert (job.status, job.members_count, job.changed_count) == ("done", 3, 3)
    assert job.created_by.memberships.get().role == Role.MANAGER
    assert holders(vip) == {m.pk for m in chosen}
    # The timeline says who tagged them.
    assert MemberChange.objects.filter(
        action="tag_added", actor=job.created_by
    ).count() == 3  # fmt: skip


def test_a_job_run_twice_tags_once(in_shop, vip):
    MemberFactory(shop=in_shop)
    job = services.queue_tag_job(
        shop=in_shop, action="add", members=Member.objects.all(), tag=vip, count=1
    )

    assert services.run_tag_job(shop=in_shop, job_id=job.pk) == "done"
    assert services.run_tag_job(shop=in_shop, job_id=job.pk) == "not queued"
    assert MemberChange.objects.filter(action="tag_added").count() == 1


def test_move_and_remove_jobs_do_what_the_actions_do(in_shop, vip, long_from_3):
    regular = TagFactory(shop=in_shop, name="Regular")
    for _ in range(3):
        MemberFactory(shop=in_shop)
    everyone = Member.objects.all()
    services.add_tag(shop=in_shop, members=everyone, tag=regular)

    with tasks_in_process():
        run(
            move_members_between_tags, in_shop, Role.OWNER, everyone,
            apply="1", from_tag=regular.pk, to_tag=vip.pk,
        )  # fmt: skip
        moved = TagJob.objects.get()
        assert moved.action == "move"
        services.run_tag_job(shop=in_shop, job_id=moved.pk)
        assert (holders(regular), len(holders(vip))) == (set(), 3)
        run(
            remove_tag_from_members, in_shop, Role.OWNER, everyone,
            apply="1", tag=vip.pk,
        )  # fmt: skip
        removed = TagJob.objects.exclude(pk=moved.pk).get()
        services.run_tag_job(shop=in_shop, job_id=removed.pk)

    assert removed.action == "remove"
    assert holders(vip) == set()
    moved.refresh_from_db()
    removed.refresh_from_db()
    assert (moved.changed_count, removed.changed_count) == (3, 3)


def test_a_job_that_fails_changes_nothing_and_says_so(
    client, settings, in_shop, vip, monkeypatch
):
    MemberFactory(shop=in_shop)
    job = services.queue_tag_job(
        shop=in_shop, action="add", members=Member.objects.all(), tag=vip, count=1
    )

    def audit_breaks(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("members.services.tags.bulk._audit_rows", audit_breaks)

    assert services.run_tag_job(shop=in_shop, job_id=job.pk) == "failed"
    assert holders(vip) == set()  # the rows inserted before the audit are gone
    job.refresh_from_db()
    assert job.finished_at is not None
    manager = MembershipFactory(shop=in_shop, role=Role.MANAGER, user__is_staff=True)
    client.force_login(manager.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    listing = client.get("/admin/members/tagjob/").content.decode()
    assert "no member was changed. Run the action again" in listing


def test_a_job_never_reaches_another_shops_members(in_shop, vip, other_shop):
    theirs = MemberFactory(shop=other_shop)
    mine = MemberFactory(shop=in_shop)
    job = services.queue_tag_job(
        shop=in_shop,
        action="add",
        members=Member.objects.unscoped().all(),
        tag=vip,
        count=2,
    )

    services.run_tag_job(shop=in_shop, job_id=job.pk)

    assert holders(vip) == {mine.pk}
    assert not MemberTag.objects.unscoped().filter(member=theirs).exists()
    # Shop B's worker cannot run shop A's job.
    assert services.run_tag_job(shop=other_shop, job_id=job.pk) == "not queued"


def test_tagging_jobs_are_listed_for_managers_of_their_shop_only(
    client, settings, in_shop, vip, other_shop
):
    MemberFactory(shop=in_shop)
    job = services.queue_tag_job(
        shop=in_shop, action="add", members=Member.objects.all(), tag=vip, count=1
    )
    services.run_tag_job(shop=in_shop, job_id=job.pk)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = f"/admin/members/tagjob/{job.pk}/change/"

    def as_staff(shop, role):
        membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
        client.force_login(membership.user)
        return client

    listing = as_staff(in_shop, Role.MANAGER).get("/admin/members/tagjob/")
    detail = client.get(page)
    theirs = as_staff(other_shop, Role.OWNER).get(page)
    clerks = as_staff(in_shop, Role.CLERK).get("/admin/members/tagjob/")

    assert listing.status_code == 200
    assert "VIP" in listing.content.decode()
    assert detail.status_code == 200
    assert "Done" in detail.content.decode()
    assert theirs.status_code in (302, 404)
    assert clerks.status_code == 403
