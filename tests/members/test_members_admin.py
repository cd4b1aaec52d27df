"""The member admin: the list (search, filters, sorting), the counter, the
member page (edits through the service, timeline, panels), privacy actions,
roles and shop isolation."""

import json
import zoneinfo
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from members.models import CustomField, Member, MemberChange, MemberTag, Tag
from members.services.members import register_member
from shops.models import Role
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:members_member_changelist")
COUNTER = reverse("admin:members_member_counter")


def page(pk):
    return reverse("admin:members_member_change", args=[pk])


def export_url(pk):
    return reverse("admin:members_member_export_data", args=[pk])


def erase_url(pk):
    return reverse("admin:members_member_erase_data", args=[pk])


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def login(client, shop):
    def as_role(role=Role.MANAGER, target_shop=None):
        membership = MembershipFactory(
            shop=target_shop or shop, role=role, user__is_staff=True
        )
        client.force_login(membership.user)
        client.user = membership.user
        return client

    return as_role


def member(shop, **details):
    details.setdefault("source", "counter")
    with shop_scope(shop):
        return register_member(shop=shop, **details)


def listed(response) -> list[int]:
    return [m.pk for m in response.context["cl"].result_list]


@pytest.mark.parametrize(
    "query", ["13800138000", "+86 138 0013 8000", "8000", "LI@example.com", "wei"]
)
def test_the_search_box_finds_by_phone_last_four_email_or_name(login, shop, query):
    wanted = member(shop, phone="13800138000", name="Li Wei", email="li@example.com")
    member(shop, phone="13900139000", name="Wang Fang")

    response = login(Role.CLERK).get(LIST, {"q": query})

    assert response.status_code == 200
    assert listed(response) == [wanted.pk]


def test_the_search_box_finds_by_member_code(login, shop):
    wanted = member(shop, phone="13800138000")
    member(shop, phone="13900139000")

    response = login().get(LIST, {"q": wanted.member_code})

    assert listed(response) == [wanted.pk]


def test_filters_and_sorting_in_the_list(login, shop):
    big = member(shop, phone="13800138000", birthday_month=5, birthday_day=2)
    small = member(shop, phone="13900139000")
    member(shop, phone="13700137000", source="import")
    with shop_scope(shop):
        Member.objects.filter(pk=big.pk).update(total_spent=Decimal(900), order_count=9)
        Member.objects.filter(pk=small.pk).update(
            total_spent=Decimal(50), order_count=1
        )
        tag = Tag.objects.create(shop=shop, name="VIP")
        MemberTag.objects.create(shop=shop, member=small, tag=tag)
    client = login()

    assert listed(client.get(LIST, {"total_spent_from": "100"})) == [big.pk]
    assert listed(client.get(LIST, {"order_count_to": "1", "source": "counter"})) == [
        small.pk
    ]
    assert listed(client.get(LIST, {"tag": tag.pk})) == [small.pk]
    assert listed(client.get(LIST, {"birthday_month": 5})) == [big.pk]
    assert listed(client.get(LIST, {"source": "import"}))[0] not in (big.pk, small.pk)
    # Column 7 is total_spent in list_display.
    by_spend = listed(client.get(LIST, {"o": "7", "q": ""}))
    assert by_spend.index(small.pk) < by_spend.index(big.pk)
    local = timezone.localtime(big.joined_at, zoneinfo.ZoneInfo(shop.time_zone))
    today = local.date().isoformat()
    assert (
        len(listed(client.get(LIST, {"joined_at_from": today, "joined_at_to": today})))
        == 3
    )


def test_sorted_lists_break_ties_by_id_in_the_sorts_direction(login, shop):
    # Members who spent the same (most of a shop: nothing yet) keep the order
    # of the sort index: oldest first ascending, newest first descending.
    ids = [member(shop, phone=f"1380013800{n}").pk for n in range(3)]
    client = login()

    assert listed(client.get(LIST, {"o": "7"})) == ids
    assert listed(client.get(LIST, {"o": "-7"})) == ids[::-1]


def test_sorted_by_last_purchase_who_never_bought_counts_as_longest_ago(login, shop):
    never, old, recent = (member(shop, phone=f"1380013800{n}").pk for n in range(3))
    now = timezone.now()
    with shop_scope(shop):
        Member.objects.filter(pk=old).update(last_purchase_at=now - timedelta(days=30))
        Member.objects.filter(pk=recent).update(last_purchase_at=now)
    client = login()

    # Column 9 is last_purchase_at in list_display.
    assert listed(client.get(LIST, {"o": "-9"})) == [recent, old, never]
    assert listed(client.get(LIST, {"o": "9"})) == [never, old, recent]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_each_row_has_unfolds_own_checkbox(login, shop, client, language):
    from django.contrib.admin import helpers
    from django.utils import translation
    from unfold.admin import checkbox

    pk = member(shop, phone="13800138000").pk
    client = login()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    html = client.get(LIST).content.decode()

    with translation.override(language):
        expected = str(checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(pk)))
    assert expected in html


def test_a_long_list_counts_no_further_than_its_cap(login, shop, monkeypatch):
    from shops.admin.base import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    for n in range(4):
        member(shop, phone=f"1380013800{n}")
    client = login()

    capped = client.get(LIST)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 4)
    exact = client.get(LIST)

    assert capped.context["cl"].result_count == 3  # the cap plus one
    assert len(listed(capped)) == 4  # every row of the page is still listed
    assert "members: more than 2" in capped.content.decode()
    assert exact.context["cl"].result_count == 4
    assert "more than" not in exact.content.decode()


def test_the_counter_finds_or_registers_in_one_step(login, shop):
    client = login(Role.CLERK)

    first = client.post(COUNTER, {"phone": "138 0013 8000", "name": "Li Wei"})
    second = client.post(COUNTER, {"phone": "+8613800138000"})

    with shop_scope(shop):
        created = Member.objects.get()
    assert created.name == "Li Wei"
    assert created.source == "counter"
    assert first.status_code == 302
    assert first.url == page(created.pk)
    assert second.url == page(created.pk)
    with shop_scope(shop):
        assert MemberChange.objects.get(member=created).actor == client.user


def test_the_counter_explains_a_bad_phone(login, shop):
    response = login(Role.CLERK).post(COUNTER, {"phone": "12"})

    assert response.status_code == 200
    assert response.context["form"].errors["phone"]
    with shop_scope(shop):
        assert not Member.objects.exists()


def test_the_list_links_to_the_counter(login):
    response = login(Role.CLERK).get(LIST)

    assert COUNTER in response.content.decode()


def test_the_member_page_shows_timeline_consent_and_panels(login, shop):
    m = member(shop, phone="13800138000", name="Li Wei", sms_consent=True)

    response = login(Role.CLERK).get(page(m.pk))

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="timeline"' in body
    assert "Joined" in body
    assert 'data-testid="consent-history"' in body
    assert 'data-panel="tags"' in body


def test_a_superuser_opens_a_member_page_in_the_all_shops_view(client, shop):
    m = member(shop, phone="13800138000", name="Li Wei")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.post(reverse("switch_shop"), {"shop": "all"})

    response = client.get(page(m.pk))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Joined" in body
    assert 'data-panel="tags"' in body


def test_a_manager_edits_through_the_service_and_the_timeline_says_so(login, shop):
    with shop_scope(shop):
        CustomField.objects.create(
            shop=shop,
            key="tea",
            label="Tea",
            field_type="choice",
            choices=["green", "black"],
        )
    m = member(shop, phone="13800138000", name="Li")
    client = login(Role.MANAGER)
    form = client.get(page(m.pk)).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "name": "Li Wei",
            "phone": "13800138000",
            "cf_tea": "green",
            "email_consent": "on",
            "status": "active",
            "_save": "1",
        }
    )
    data.pop("custom_fields", None)

    response = client.post(page(m.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    m.refresh_from_db()
    assert m.name == "Li Wei"
    assert m.custom_fields == {"tea": "green"}
    assert m.email_consent
    with shop_scope(shop):
        change = MemberChange.objects.filter(member=m).first()
    assert change.actor == client.user
    assert set(change.changes) == {"name", "custom_fields", "email_consent"}
    # Staff read what happened in words, not the stored field keys.
    body = client.get(page(m.pk)).content.decode()
    assert "Profile changed" in body
    assert "name: Li → Li Wei" in body


def test_a_bad_edit_shows_the_error_and_changes_nothing(login, shop):
    member(shop, phone="13900139000", name="Holder")
    m = member(shop, phone="13800138000", name="Li")
    client = login(Role.MANAGER)

    response = client.post(
        page(m.pk),
        {
            "name": "X",
            "phone": "13900139000",
            "status": "active",
            "gender": "",
            "language": "",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Holder" in str(errors["phone"])
    m.refresh_from_db()
    assert m.name == "Li"


def test_a_clerk_registers_but_cannot_edit_export_or_erase(login, shop):
    m = member(shop, phone="13800138000", name="Li")
    client = login(Role.CLERK)

    edit = client.post(page(m.pk), {"name": "X", "phone": "13800138000"})
    export = client.get(export_url(m.pk))
    erase = client.post(erase_url(m.pk))

    assert edit.status_code == 403
    assert export.status_code == 403
    assert erase.status_code == 403
    m.refresh_from_db()
    assert (m.name, m.status) == ("Li", "active")


def test_a_manager_downloads_the_data_and_erases_after_confirming(login, shop):
    m = member(shop, phone="13800138000", name="Li Wei")
    client = login(Role.MANAGER)

    export = client.get(export_url(m.pk))
    confirm = client.get(erase_url(m.pk))
    erase = client.post(erase_url(m.pk))

    assert export["Content-Disposition"].startswith("attachment")
    assert json.loads(export.content)["member"]["name"] == "Li Wei"
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.content.decode()
    assert erase.status_code == 302
    m.refresh_from_db()
    assert (m.name, m.phone, m.status) == ("", "", "erased")


def test_another_shops_member_is_404_everywhere(login, shop, other_shop):
    theirs = member(other_shop, phone="13800138000", name="Theirs")
    client = login(Role.OWNER)

    assert client.get(page(theirs.pk)).status_code == 404
    assert client.post(page(theirs.pk), {"name": "Mine"}).status_code == 404
    assert client.get(export_url(theirs.pk)).status_code == 404
    assert client.post(erase_url(theirs.pk)).status_code == 404
    assert listed(client.get(LIST, {"q": "13800138000"})) == []
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Theirs", "active")


def test_custom_fields_are_for_managers(login):
    url = reverse("admin:members_customfield_changelist")

    assert login(Role.CLERK).get(url).status_code == 403


def test_a_manager_adds_a_choice_field_and_must_list_choices(login, shop):
    client = login(Role.MANAGER)
    url = reverse("admin:members_customfield_add")

    refused = client.post(
        url,
        {
            "key": "tea",
            "label": "Tea",
            "field_type": "choice",
            "choices": "[]",
            "position": 0,
        },
    )
    accepted = client.post(
        url,
        {
            "key": "tea",
            "label": "Tea",
            "field_type": "choice",
            "choices": '["green"]',
            "position": 0,
        },
    )

    assert refused.status_code == 200
    assert accepted.status_code == 302
    with shop_scope(shop):
        assert CustomField.objects.get().choices == ["green"]


def test_the_counter_names_who_has_the_email_already(login, shop):
    member(shop, email="li@example.com", name="Li Wei")

    response = login(Role.CLERK).post(
        COUNTER, {"phone": "13900139000", "email": "li@example.com"}
    )

    assert response.status_code == 200
    assert "Li Wei" in str(response.context["form"].errors["email"])
    with shop_scope(shop):
        assert Member.objects.count() == 1
