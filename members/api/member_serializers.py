"""Shapes of the members API. Input serializers only coerce types; the
services hold the rules (phone format, birthdays, custom fields, duplicates)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from members.extensions import MEMBER_SECTIONS
from members.models import Gender, Member, MemberChange, MemberSource, MemberStatus
from shops.api.serializers import ErrorDetailSerializer
from shops.db import MAX_ID


class MemberSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = [
            "id",
            "member_code",
            "name",
            "phone",
            "email",
            "birthday_month",
            "birthday_day",
            "birth_year",
            "gender",
            "language",
            "home_store",
            "source",
            "referred_by",
            "status",
            "joined_at",
            "sms_consent",
            "sms_consent_at",
            "email_consent",
            "email_consent_at",
            "notes",
            "custom_fields",
            "external_id",
            "total_spent",
            "order_count",
            "first_purchase_at",
            "last_purchase_at",
            "tags",
            "created_at",
            "updated_at",
            "erased_at",
        ]
        read_only_fields = fields

    def get_fields(self):
        fields = super().get_fields()
        for section in MEMBER_SECTIONS.values():
            fields[section.name] = section.field()
        return fields

    def get_tags(self, member) -> list[str]:
        # Prefetched by the view (with_tags): no query per member.
        return [mt.tag.name for mt in member.member_tags.all()]


class MemberWriteSerializer(serializers.Serializer):
    """Fields of PATCH; POST adds `source`, `consent_source` and `joined_at`."""

    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    birthday_month = serializers.IntegerField(required=False, allow_null=True)
    birthday_day = serializers.IntegerField(required=False, allow_null=True)
    birth_year = serializers.IntegerField(required=False, allow_null=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    language = serializers.ChoiceField(
        choices=[("", ""), *settings.LANGUAGES], required=False
    )
    home_store = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    referred_by = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    sms_consent = serializers.BooleanField(required=False)
    email_consent = serializers.BooleanField(required=False)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    custom_fields = serializers.DictField(required=False)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


class MemberUpdateSerializer(MemberWriteSerializer):
    status = serializers.ChoiceField(choices=MemberStatus.choices, required=False)
    consent_source = serializers.CharField(
        max_length=40, required=False, allow_blank=True
    )


class MemberCreateSerializer(MemberWriteSerializer):
    source = serializers.ChoiceField(
        choices=MemberSource.choices, default=MemberSource.API
    )
    consent_source = serializers.CharField(
        max_length=40, required=False, allow_blank=True
    )
    joined_at = serializers.DateTimeField(required=False)


class MemberChangeSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField()

    class Meta:
        model = MemberChange
        fields = ["id", "at", "action", "by", "changes"]

    def get_by(self, change) -> str:
        if change.actor_id:
            return change.actor.get_full_name() or change.actor.get_username()
        return change.actor_label


class ExistingMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_code = serializers.CharField()


class MemberExistsSerializer(serializers.Serializer):
    """409 `member_exists`: the error, and which member holds the details."""

    error = ErrorDetailSerializer()
    member = ExistingMemberSerializer()


class MemberExportSerializer(serializers.Serializer):
    shop = serializers.CharField()
    exported_at = serializers.DateTimeField()
    member = serializers.DictField()
    custom_fields = serializers.DictField()
    consent_history = serializers.ListField(child=serializers.DictField())
    tags = serializers.ListField(child=serializers.DictField())
    purchases = serializers.ListField(child=serializers.DictField())
    timeline = serializers.ListField(child=serializers.DictField())
