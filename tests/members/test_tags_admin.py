"""Tag admin: who may edit, rules with their settings, the member-page panel."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from members.models import MemberTag, Tag, TagRule
from shops.models import Role
from tests.factories import MembershipFactory
from tests.members.factories import MemberFactory, TagFactory, TagRuleFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:members_tag_add")
LIST = reverse("admin:members_tag_changelist")


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def login(client, shop, role):
    membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
    client.force_login(membership.user)
    return membership.user


def tag_form(name="VIP", color="#eab308", rules=()):
    data = {
        "name": name,
        "color": color,
        "description": "",
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for i, rule in enumerate(rules):
        data.update({f"rules-{i}-{k}": v for k, v in rule.items()})
        data[f"rules-{i}-is_active"] = "on"
    return data


def test_a_manager_creates_a_tag_with_a_rule(client, shop):
    login(client, shop, Role.MANAGER)
    MemberFactory(shop=shop, name="Big spender", total_spent=Decimal("2000"))

    response = client.post(
        ADD,
        tag_form(rules=[{"kind": "min_total_spent", "amount": "1000"}]),
    )

    tag = Tag.objects.unscoped().get(shop=shop)
    assert response.status_code == 302
    assert TagRule.objects.unscoped().get(tag=tag).params == {"amount": "1000.00"}
    listing = client.get(LIST).content.decode()
    assert "Total spend at least: 1000.00" in listing


def test_bad_rule_settings_are_shown_and_nothing_is_saved(client, shop):
    login(client, shop, Role.OWNER)

    response = client.post(
        ADD, tag_form(rules=[{"kind": "min_orders_in_days", "orders": "2"}])
    )

    assert response.status_code == 200
    assert "Enter a number of days from 1 to" in response.content.decode()
    assert not Tag.objects.unscoped().filter(shop=shop).exists()


def test_a_duplicate_name_is_refused_whatever_the_case(client, shop):
    login(client, shop, Role.MANAGER)
    TagFactory(shop=shop, name="VIP")

    response = client.post(ADD, tag_form(name="vip"))

    assert response.status_code == 200
    assert "There is already a tag named" in response.content.decode()
    assert Tag.objects.unscoped().filter(shop=shop).count() == 1


def test_a_clerk_sees_tags_but_cannot_edit_them_or_their_rules(client, shop):
    login(client, shop, Role.CLERK)
    tag = TagFactory(shop=shop, name="VIP")
    TagRuleFactory(tag=tag)
    change = reverse("admin:members_tag_change", args=[tag.pk])
    apply = reverse("admin:members_tag_apply_rules_now", args=[tag.pk])

    assert client.get(LIST).status_code == 200
    assert client.get(ADD).status_code == 403
    client.post(change, tag_form(name="Renamed"))
    assert client.post(apply).status_code == 403
    tag.refresh_from_db()
    assert tag.name == "VIP"


def test_another_shops_tag_is_a_404(client, shop, other_shop):
    login(client, shop, Role.OWNER)
    theirs = TagFactory(shop=other_shop, name="Theirs")

    response = client.get(reverse("admin:members_tag_change", args=[theirs.pk]))

    assert response.status_code == 404
    assert "Theirs" not in client.get(LIST).content.decode()


def test_apply_rules_now_tags_the_matching_members(client, shop):
    login(client, shop, Role.MANAGER)
    rich = MemberFactory(shop=shop, total_spent=Decimal("500"))
    MemberFactory(shop=shop, total_spent=Decimal("5"))
    tag = TagFactory(shop=shop, name="VIP")
    TagRuleFactory(tag=tag, params={"amount": "100.00"})
    url = reverse("admin:members_tag_apply_rules_now", args=[tag.pk])

    response = client.post(url, follow=True)

    assert list(MemberTag.objects.unscoped().values_list("member", flat=True)) == [
        rich.pk
    ]
    assert "1 member(s) got “VIP”" in response.content.decode()


def test_staff_tag_and_untag_one_member_from_the_member_page(client, shop):
    login(client, shop, Role.CLERK)
    member = MemberFactory(shop=shop)
    tag = TagFactory(shop=shop, name="VIP")
    add = reverse("admin:members_tag_member_add", args=[member.pk])
    remove = reverse("admin:members_tag_member_remove", args=[member.pk, tag.pk])

    client.post(add, {"tag": tag.pk, "next": "/admin/"})
    tagged = list(MemberTag.objects.unscoped().values_list("source", flat=True))
    client.post(remove, {"next": "/admin/"})

    assert tagged == ["manual"]
    assert not MemberTag.objects.unscoped().exists()


def test_the_member_page_urls_refuse_another_shops_member(client, shop, other_shop):
    login(client, shop, Role.OWNER)
    theirs = MemberFactory(shop=other_shop)
    their_tag = TagFactory(shop=other_shop, name="Theirs")
    my_tag = TagFactory(shop=shop, name="Mine")

    wrong_member = client.post(
        reverse("admin:members_tag_member_add", args=[theirs.pk]), {"tag": my_tag.pk}
    )
    wrong_tag = client.post(
        reverse("admin:members_tag_member_remove", args=[theirs.pk, their_tag.pk])
    )

    assert (wrong_member.status_code, wrong_tag.status_code) == (404, 404)
    assert not MemberTag.objects.unscoped().exists()


def test_a_clerk_is_not_offered_the_bulk_tag_actions(client, shop):
    from django.conf import settings
    from django.urls import reverse

    from shops.models import Role
    from tests.factories import MembershipFactory

    for role, offered in ((Role.CLERK, False), (Role.MANAGER, True)):
        membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
        client.force_login(membership.user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

        page = client.get(reverse("admin:members_member_changelist")).content.decode()

        assert ('value="add_tag_to_members"' in page) is offered
