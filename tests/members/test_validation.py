import pytest
from django.core.exceptions import ValidationError

from members.models import CustomField
from members.validation import (
    clean_custom_fields,
    normalize_email,
    normalize_phone,
    validate_birthday,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("13800138000", "CN", "+8613800138000"),
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138-0013-8000", "US", "+8613800138000"),
        ("0086 13800138000", "GB", "+8613800138000"),
        ("020 7946 0018", "GB", "+442079460018"),
    ],
)
def test_phones_are_stored_in_one_international_form(raw, region, expected):
    assert normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize("raw", ["", "abc", "123", "1380013800099999", "+86 1"])
def test_malformed_phones_are_refused_with_a_message(raw):
    with pytest.raises(ValidationError) as error:
        normalize_phone(raw, region="CN")

    assert error.value.messages[0]


def test_emails_are_lower_cased_and_checked():
    assert normalize_email("  Li.Wei@Example.COM ") == "li.wei@example.com"
    for bad in ["", "li.wei", "li@", "@example.com", "li wei@example.com"]:
        with pytest.raises(ValidationError):
            normalize_email(bad)


@pytest.mark.parametrize(
    ("month", "day", "year"),
    [(2, 29, None), (2, 29, 2000), (12, 31, 1990), (1, 1, 1900), (None, None, None)],
)
def test_real_birthdays_pass(month, day, year):
    validate_birthday(month=month, day=day, year=year)


@pytest.mark.parametrize(
    ("month", "day", "year", "field"),
    [
        (2, 30, None, "birthday_day"),
        (2, 29, 2001, "birthday_day"),
        (4, 31, None, "birthday_day"),
        (13, 1, None, "birthday_month"),
        (0, 1, None, "birthday_month"),
        (5, None, None, "birthday_day"),
        (None, None, 1990, "birthday_month"),
        (5, 5, 1899, "birth_year"),
        (5, 5, 2999, "birth_year"),
        ("May", 5, None, "birthday_month"),
    ],
)
def test_impossible_birthdays_are_refused_on_the_right_field(month, day, year, field):
    with pytest.raises(ValidationError) as error:
        validate_birthday(month=month, day=day, year=year)

    assert field in error.value.message_dict


@pytest.fixture
def fields(in_shop):
    CustomField.objects.create(
        shop=in_shop,
        key="tea",
        label="Favourite tea",
        field_type="choice",
        choices=["green", "black"],
    )
    CustomField.objects.create(
        shop=in_shop, key="cups", label="Cups a day", field_type="number"
    )
    CustomField.objects.create(
        shop=in_shop, key="vip", label="VIP", field_type="boolean"
    )
    CustomField.objects.create(
        shop=in_shop, key="since", label="Customer since", field_type="date"
    )
    CustomField.objects.create(
        shop=in_shop, key="skin", label="Skin type", required=True
    )
    return in_shop


def test_custom_field_values_are_typed(fields):
    cleaned = clean_custom_fields(
        shop=fields,
        values={
            "tea": "green",
            "cups": "3",
            "vip": "yes",
            "since": "2020-01-31",
            "skin": " dry ",
        },
    )

    assert cleaned == {
        "tea": "green",
        "cups": 3,
        "vip": True,
        "since": "2020-01-31",
        "skin": "dry",
    }


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"skin": "dry", "colour": "red"}, "custom_fields.colour"),
        ({"skin": "dry", "tea": "oolong"}, "custom_fields.tea"),
        ({"skin": "dry", "cups": "many"}, "custom_fields.cups"),
        ({"skin": "dry", "vip": "perhaps"}, "custom_fields.vip"),
        ({"skin": "dry", "since": "31/01/2020"}, "custom_fields.since"),
        ({"tea": "green"}, "custom_fields.skin"),
    ],
)
def test_wrong_custom_field_values_name_the_field(fields, values, key):
    with pytest.raises(ValidationError) as error:
        clean_custom_fields(shop=fields, values=values)

    assert key in error.value.message_dict


def test_a_partial_update_need_not_repeat_required_fields(fields):
    assert clean_custom_fields(shop=fields, values={"tea": "black"}, partial=True) == {
        "tea": "black"
    }
