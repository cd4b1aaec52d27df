"""A member's data export holds everything; erasure forgets the person and
keeps the accounts."""

import json

import pytest

from members.models import ConsentChange, Member, MemberChange, MemberTag, Tag
from members.services.members import register_member, update_member
from members.services.privacy import (
    erase_member,
    export_member_data,
    register_export_section,
)
from shops.models import OutboxEvent
from tests.factories import UserFactory
from tests.members.factories import CustomFieldFactory, PurchaseFactory


@pytest.fixture
def li(in_shop):
    CustomFieldFactory(shop=in_shop, key="tea", label="Tea")
    member = register_member(
        shop=in_shop,
        phone="13800138000",
        name="Li Wei",
        email="li@example.com",
        birthday_month=5,
        birthday_day=4,
        birth_year=1990,
        source="counter",
        sms_consent=True,
        notes="Likes oolong",
        custom_fields={"tea": "oolong"},
        external_id="POS-1",
    )
    update_member(member=member, changes={"name": "Li Wei Jr"})
    tag = Tag.objects.create(shop=in_shop, name="VIP")
    MemberTag.objects.create(shop=in_shop, member=member, tag=tag)
    purchase = PurchaseFactory(member=member, shop=in_shop, amount="88.00")
    purchase.lines.create(
        shop=in_shop, sku="T1", name="Oolong", quantity=1, unit_price="88.00"
    )
    return member


def test_the_export_holds_profile_consent_tags_purchases_and_timeline(li):
    data = export_member_data(member=li)

    json.dumps(data)  # ready to download as it is
    assert data["member"]["name"] == "Li Wei Jr"
    assert data["member"]["phone"] == "+8613800138000"
    assert data["custom_fields"] == {"tea": "oolong"}
    assert data["consent_history"][0]["channel"] == "sms"
    assert data["consent_history"][0]["granted"] is True
    assert [t["name"] for t in data["tags"]] == ["VIP"]
    assert data["purchases"][0]["amount"] == "88.00"
    assert data["purchases"][0]["lines"][0]["name"] == "Oolong"
    assert [e["action"] for e in data["timeline"]] == ["created", "updated"]


def test_later_apps_add_their_section_to_the_export(li, monkeypatch):
    from members.services import privacy

    monkeypatch.setattr(privacy, "EXPORT_SECTIONS", {})
    register_export_section("points", lambda member: {"balance": 120})

    assert export_member_data(member=li)["points"] == {"balance": 120}


def test_erasure_forgets_the_person_and_keeps_the_purchases(li):
    manager = UserFactory()

    erase_member(member=li, acting_user=manager)

    li.refresh_from_db()
    for field in ("name", "phone", "phone_last4", "email", "notes", "external_id"):
        assert getattr(li, field) == ""
    assert li.birthday_month is None
    assert li.birth_year is None
    assert li.custom_fields == {}
    assert li.status == "erased"
    assert li.erased_at is not None
    assert not li.sms_consent
    assert li.purchases.count() == 1
    assert li.member_code
    assert not MemberTag.objects.filter(member=li).exists()
    withdrawn = ConsentChange.objects.filter(member=li).first()
    assert (withdrawn.granted, withdrawn.source) == (False, "erasure")
    last = MemberChange.objects.filter(member=li).first()
    assert (last.action, last.actor) == ("erased", manager)
    assert OutboxEvent.objects.filter(topic="member.updated").count() == 2


def test_erasure_scrubs_old_values_from_the_timeline(li):
    erase_member(member=li)

    history = json.dumps(
        list(MemberChange.objects.filter(member=li).values_list("changes", flat=True))
    )
    for secret in ("Li Wei", "13800138000", "li@example.com", "oolong", "POS-1"):
        assert secret not in history
    updated = MemberChange.objects.get(member=li, action="updated")
    assert updated.changes == {"name": ["[erased]", "[erased]"]}


def test_erasing_twice_is_harmless(li):
    erase_member(member=li)
    erase_member(member=li)

    assert MemberChange.objects.filter(member=li, action="erased").count() == 1


def test_an_erased_phone_can_join_again(li, in_shop):
    erase_member(member=li)

    again = register_member(shop=in_shop, phone="13800138000", source="counter")

    assert again.pk != li.pk
    assert Member.objects.count() == 2
