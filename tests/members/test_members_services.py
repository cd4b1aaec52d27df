import pytest
from django.core.exceptions import ValidationError

from members.models import ConsentChange, CustomField, Member, MemberChange
from members.services.members import (
    MemberErased,
    MemberExists,
    RegistrationRefused,
    find_or_register_by_phone,
    record_member_change,
    register_member,
    update_member,
)
from shops.models import OutboxEvent
from tests.factories import StoreFactory, UserFactory


def test_registering_at_the_counter_stores_a_clean_member(in_shop):
    clerk = UserFactory()

    member = register_member(
        shop=in_shop,
        phone="138 0013 8000",
        name=" Li Wei ",
        email="LI@EXAMPLE.COM",
        birthday_month=2,
        birthday_day=29,
        source="counter",
        sms_consent=True,
        acting_user=clerk,
    )

    member.refresh_from_db()
    assert member.phone == "+8613800138000"
    assert member.phone_last4 == "8000"
    assert member.email == "li@example.com"
    assert member.name == "Li Wei"
    assert len(member.member_code) == 8
    assert member.sms_consent
    assert member.sms_consent_at is not None
    consent = ConsentChange.objects.get(member=member)
    assert (consent.channel, consent.granted, consent.source) == (
        "sms",
        True,
        "counter",
    )
    created = MemberChange.objects.get(member=member)
    assert created.action == "created"
    assert created.actor == clerk
    assert created.changes["phone"] == [None, "+8613800138000"]
    assert OutboxEvent.objects.filter(topic="member.created").count() == 1


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        (
            {"phone": "13800138000", "birthday_month": 2, "birthday_day": 30},
            "birthday_day",
        ),
        (
            {"phone": "13800138000", "custom_fields": {"shoe": "42"}},
            "custom_fields.shoe",
        ),
        ({}, "phone"),
        ({"phone": "13800138000", "gender": "robot"}, "gender"),
        ({"phone": "13800138000", "language": "xx"}, "language"),
    ],
)
def test_bad_details_are_refused_and_nothing_is_saved(in_shop, details, field):
    with pytest.raises(ValidationError) as error:
        register_member(shop=in_shop, source="counter", **details)

    assert field in error.value.message_dict
    assert not Member.objects.exists()
    assert not MemberChange.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_a_wrongly_typed_custom_field_is_refused(in_shop):
    CustomField.objects.create(
        shop=in_shop, key="cups", label="Cups", field_type="number"
    )

    with pytest.raises(ValidationError) as error:
        register_member(
            shop=in_shop,
            phone="13800138000",
            source="api",
            custom_fields={"cups": "lots"},
        )

    assert "custom_fields.cups" in error.value.message_dict
    assert not Member.objects.exists()


def test_a_taken_phone_names_the_member_for_staff(in_shop):
    first = register_member(
        shop=in_shop, phone="13800138000", name="Li Wei", source="counter"
    )

    with pytest.raises(MemberExists) as error:
        register_member(shop=in_shop, phone="+86 138 0013 8000", source="counter")

    assert error.value.member == first
    assert "Li Wei" in str(error.value.message)
    assert first.member_code in str(error.value.message)
    assert error.value.status_code == 409
    assert Member.objects.count() == 1


def test_a_taken_email_is_neutral_where_enumeration_matters(in_shop):
    register_member(
        shop=in_shop, email="li@example.com", name="Li Wei", source="counter"
    )

    with pytest.raises(RegistrationRefused) as error:
        register_member(
            shop=in_shop, email="Li@example.com", source="portal", reveal=False
        )

    assert "Li Wei" not in str(error.value.message)
    assert "li@example.com" not in str(error.value.message)


def test_the_same_phone_may_join_two_shops(shop, other_shop):
    register_member(shop=shop, phone="13800138000", source="counter")
    register_member(shop=other_shop, phone="13800138000", source="counter")

    assert Member.objects.unscoped().filter(phone="+8613800138000").count() == 2


def test_find_or_register_finds_by_any_spelling_of_the_phone(in_shop):
    member, created = find_or_register_by_phone(shop=in_shop, phone="13800138000")
    again, created_again = find_or_register_by_phone(
        shop=in_shop, phone="+86 138-0013-8000"
    )

    assert created
    assert not created_again
    assert again == member


def test_updates_audit_only_what_changed_and_who_did_it(in_shop):
    manager = UserFactory()
    member = register_member(
        shop=in_shop, phone="13800138000", name="Li", source="counter"
    )

    update_member(
        member=member,
        changes={"name": "Li Wei", "phone": "13800138000", "email_consent": True},
        acting_user=manager,
        consent_source="paper form",
    )

    member.refresh_from_db()
    change = MemberChange.objects.filter(member=member).first()
    assert change.action == "updated"
    assert change.actor == manager
    assert change.changes == {"name": ["Li", "Li Wei"], "email_consent": [False, True]}
    assert member.email_consent_at is not None
    consent = ConsentChange.objects.get(member=member, channel="email")
    assert consent.granted
    assert consent.source == "paper form"
    assert OutboxEvent.objects.filter(topic="member.updated").count() == 1


def test_an_update_without_changes_writes_nothing(in_shop):
    member = register_member(
        shop=in_shop, phone="13800138000", name="Li", source="counter"
    )

    update_member(member=member, changes={"name": "Li"})

    assert MemberChange.objects.filter(member=member).count() == 1


def test_an_update_to_a_taken_phone_is_refused_and_changes_nothing(in_shop):
    holder = register_member(shop=in_shop, phone="13800138000", source="counter")
    member = register_member(
        shop=in_shop, phone="13900139000", name="Wang", source="counter"
    )

    with pytest.raises(MemberExists) as error:
        update_member(
            member=member, changes={"phone": "13800138000", "name": "Wang Fang"}
        )

    assert error.value.member == holder
    member.refresh_from_db()
    assert (member.phone, member.name) == ("+8613900139000", "Wang")


def test_an_update_cannot_touch_system_fields(in_shop):
    member = register_member(shop=in_shop, phone="13800138000", source="counter")

    with pytest.raises(ValidationError) as error:
        update_member(member=member, changes={"total_spent": 100})

    assert "total_spent" in error.value.message_dict


def test_a_home_store_of_another_shop_is_refused(in_shop, other_shop):
    store = StoreFactory(shop=other_shop)

    with pytest.raises(ValidationError) as error:
        register_member(
            shop=in_shop, phone="13800138000", source="counter", home_store=store
        )

    assert "home_store" in error.value.message_dict


def test_other_modules_write_to_the_timeline(in_shop):
    member = register_member(shop=in_shop, phone="13800138000", source="counter")

    record_member_change(
        member=member,
        action="tagged",
        changes={"tags": [[], ["VIP"]]},
        actor_label="rule",
    )

    entry = MemberChange.objects.filter(member=member).first()
    assert (entry.action, entry.actor_label) == ("tagged", "rule")


def test_an_erased_member_cannot_be_edited(in_shop):
    member = register_member(shop=in_shop, phone="13800138000", source="counter")
    Member.objects.filter(pk=member.pk).update(status="erased")

    with pytest.raises(MemberErased):
        update_member(member=member, changes={"name": "Back"})
