"""API of the members app: tags, and the tags of one member.

    GET  /api/v1/tags                         the shop's tags
    POST /api/v1/tags                         create one (write key)
    GET  /api/v1/members/{id}/tags            a member's tags (by hand or by rule)
    POST /api/v1/members/{id}/tags            {"tag": 12} or {"tag": "VIP"}
    DELETE /api/v1/members/{id}/tags/{tag_id}

Another shop's member or tag is a 404, like a missing one.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from members.models import Member, MemberTag, Tag
from members.selectors import tags as selectors
from members.services import tags as services
from shops.api.idempotency import idempotent
from shops.api.urls import ApiRouter
from shops.api.views import ShopScopedAPIView, ShopScopedViewSet
from shops.db import MAX_ID
from shops.errors import NotFound


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ("id", "name", "color", "description", "created_at")
        read_only_fields = fields


class TagCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    color = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$", required=False, default="#64748b"
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class MemberTagSerializer(serializers.ModelSerializer):
    tag = TagSerializer(read_only=True)

    class Meta:
        model = MemberTag
        fields = ("tag", "source", "added_at")
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "minLength": 1, "maxLength": 50},
        ],
        "description": "The tag's id, or its exact name.",
    }
)
class TagReferenceField(serializers.Field):
    default_error_messages = {
        "invalid": _("Give the tag's id (a number) or its name (text)."),
    }

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        text = data.strip() if isinstance(data, str) else ""
        if text and len(text) <= 50 and "\x00" not in text:
            return text
        self.fail("invalid")

    def to_representation(self, value):
        return value


class TagMemberSerializer(serializers.Serializer):
    tag = TagReferenceField()


@extend_schema(tags=["tags"])
class TagViewSet(ShopScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Shop-defined tags with colours; members carry them by hand or by rule."""

    model = Tag
    serializer_class = TagSerializer

    @extend_schema(
        summary="Create a tag",
        request=TagCreateSerializer,
        responses={201: TagSerializer},
        examples=[
            OpenApiExample(
                "VIP",
                value={"name": "VIP", "color": "#eab308"},
                request_only=True,
            )
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        given = TagCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        tag = services.create_tag(shop=self.shop, **given.validated_data)
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)


def _member(member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id).first()  # scoped to the key's shop
    if member is None:
        raise NotFound(_("No such member."))
    return member


def _tag(reference) -> Tag:
    tags = Tag.objects.all()  # scoped to the key's shop
    if isinstance(reference, int):
        tag = tags.filter(pk=reference).first() if 0 < reference <= MAX_ID else None
    else:
        tag = tags.filter(name=reference).first()
    if tag is None:
        raise NotFound(_("No such tag."))
    return tag


def _actor(view) -> str:
    return f"API key {view.api_key.name}"[:100]


@extend_schema(tags=["tags"])
class MemberTagsView(ShopScopedAPIView):
    @extend_schema(
        summary="A member's tags", responses={200: MemberTagSerializer(many=True)}
    )
    def get(self, request, member_id: int):
        member = _member(member_id)
        rows = selectors.member_tags(shop=self.shop, member=member)
        return Response(MemberTagSerializer(rows, many=True).data)

    @extend_schema(
        summary="Tag a member by hand (by tag id or name)",
        request=TagMemberSerializer,
        responses={200: MemberTagSerializer, 201: MemberTagSerializer},
        examples=[OpenApiExample("By name", value={"tag": "VIP"}, request_only=True)],
    )
    @idempotent
    def post(self, request, member_id: int):
        member = _member(member_id)
        given = TagMemberSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        tag = _tag(given.validated_data["tag"])
        changed = services.tag_member(
            shop=self.shop, member=member, tag=tag, actor_label=_actor(self)
        )
        row = MemberTag.objects.select_related("tag").get(member=member, tag=tag)
        return Response(
            MemberTagSerializer(row).data,
            status=status.HTTP_201_CREATED if changed else status.HTTP_200_OK,
        )


@extend_schema(tags=["tags"])
class MemberTagView(ShopScopedAPIView):
    @extend_schema(summary="Take a tag off a member", responses={204: None})
    def delete(self, request, member_id: int, tag_id: int):
        member = _member(member_id)
        tag = _tag(tag_id)
        services.untag_member(
            shop=self.shop, member=member, tag=tag, actor_label=_actor(self)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _urls():
    from django.urls import path

    router = ApiRouter()
    router.register("tags", TagViewSet, basename="tag")
    return [
        *router.urls,
        path(
            "members/<int:member_id>/tags",
            MemberTagsView.as_view(),
            name="member-tags",
        ),
        path(
            "members/<int:member_id>/tags/<int:tag_id>",
            MemberTagView.as_view(),
            name="member-tag",
        ),
    ]


api_urlpatterns = _urls()
