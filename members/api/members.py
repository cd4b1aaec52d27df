"""Members API: find, register, read and change members, their timeline, and
their data export and erasure.

    GET   /api/v1/members?q=8000&status=active&ordering=-total_spent
    POST  /api/v1/members                      (Idempotency-Key welcome)
    GET   /api/v1/members/by-code/{code}       (the till scans the card)
    GET   /api/v1/members/{id}     PATCH /api/v1/members/{id}
    GET   /api/v1/members/{id}/changes
    GET   /api/v1/members/{id}/export          POST /api/v1/members/{id}/erase
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from members.extensions import prefetch_sections
from members.filters import ORDERING_FIELDS, MemberFilter, parse_ordering
from members.models import Member, MemberChange
from members.selectors.members import member_code_of, search_members, with_tags
from members.services.members import MemberExists, register_member, update_member
from members.services.privacy import erase_member, export_member_data
from shops.api.errors import error_body
from shops.api.idempotency import idempotent
from shops.api.pagination import IdCursorPagination, InvalidCursor
from shops.api.serializers import ErrorSerializer
from shops.api.urls import ApiRouter
from shops.api.views import ShopScopedViewSet
from shops.models import Store

from .member_serializers import (
    MemberChangeSerializer,
    MemberCreateSerializer,
    MemberExistsSerializer,
    MemberExportSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
)

ORDERING_CHOICES = [f"{sign}{name}" for name in ORDERING_FIELDS for sign in ("", "-")]
# Sorting by a field members may lack lists only the members who have it.
NULLABLE_SORTS = {"last_purchase_at", "birthday_month"}


class MemberCursorPagination(IdCursorPagination):
    """Cursor pages in the order the request asked for (id breaks ties)."""

    def get_ordering(self, request, queryset, view):
        return getattr(view, "member_ordering", None) or ("-id",)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        first = self.ordering[0].lstrip("-")
        if first != "id":
            # A tampered position must be a 400, not a database error.
            field = Member._meta.get_field(first)
            try:
                field.to_python(cursor.position)
            except (ValidationError, ValueError, TypeError):
                raise InvalidCursor() from None
        return cursor


def _existing(exc: MemberExists) -> Response:
    body = error_body(
        exc.code, exc.message, {k: [str(m) for m in v] for k, v in exc.fields.items()}
    )
    body["member"] = {"id": exc.member.pk, "member_code": exc.member.member_code}
    return Response(body, status=status.HTTP_409_CONFLICT)


LIST_PARAMETERS = [
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description=(
            "Search: a phone number (local or +86...), its last four digits, "
            "a member code, an email address or part of a name."
        ),
    ),
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        enum=ORDERING_CHOICES,
        description=(
            "Sort order, `-` for descending; default `-id` (newest first). "
            "Sorting by last_purchase_at or birthday lists only members who have one."
        ),
    ),
]


@extend_schema(tags=["members"])
@extend_schema_view(
    list=extend_schema(
        summary="Find and filter the shop's members",
        parameters=LIST_PARAMETERS,
    ),
    retrieve=extend_schema(summary="One member, with figures, tags and consent"),
)
class MemberViewSet(
    ShopScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    """The shop's members (会员). Figures (`total_spent`, `order_count`, first
    and last purchase) count completed purchases net of refunds."""

    model = Member
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    pagination_class = MemberCursorPagination
    member_ordering: tuple[str, ...] = ("-id",)

    def _actor(self) -> str:
        return f"API key {self.api_key.name}"[:100]

    def get_queryset(self):
        queryset = Member.objects.all()  # the key's shop: the scope is set
        if self.action in ("list", "retrieve", "by_code", "partial_update", "erase"):
            queryset = prefetch_sections(with_tags(queryset))
        return queryset

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        queryset = super().filter_queryset(queryset)
        self.member_ordering = parse_ordering(self.request.query_params.get("ordering"))
        first = self.member_ordering[0].lstrip("-")
        if first in NULLABLE_SORTS:
            queryset = queryset.filter(**{f"{first}__isnull": False})
        query = self.request.query_params.get("q", "")
        return search_members(query=query, shop=self.shop, queryset=queryset)

    def _store(self, store_id):
        if store_id is None:
            return None
        store = Store.objects.filter(shop=self.shop, pk=store_id).first()
        if store is None:
            raise ValidationError(
                {"home_store": _("No store of this shop has this id.")}
            )
        return store

    def _referrer(self, member_id):
        if member_id is None:
            return None
        referrer = Member.objects.filter(shop=self.shop, pk=member_id).first()
        if referrer is None:
            raise ValidationError(
                {"referred_by": _("No member of this shop has this id.")}
            )
        return referrer

    def _relations(self, data: dict) -> dict:
        if "home_store" in data:
            data["home_store"] = self._store(data["home_store"])
        if "referred_by" in data:
            data["referred_by"] = self._referrer(data["referred_by"])
        return data

    @extend_schema(
        summary="Register a member",
        description=(
            "Needs a phone or an email. A phone, email or external_id another "
            "member has is refused with 409 `member_exists`, naming that member."
        ),
        request=MemberCreateSerializer,
        responses={
            201: MemberSerializer,
            409: OpenApiResponse(
                MemberExistsSerializer,
                "`member_exists`: the phone, email or external_id belongs to the "
                "member given in `member`.",
            ),
        },
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        given = MemberCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = self._relations(dict(given.validated_data))
        try:
            member = register_member(shop=self.shop, actor_label=self._actor(), **data)
        except MemberExists as exc:
            return _existing(exc)
        member = with_tags(self.get_queryset()).get(pk=member.pk)
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a member's profile or consent",
        description=(
            "Only the fields given change; each change is on the member's "
            "timeline. Consent changes are recorded with `consent_source` "
            "(default: api)."
        ),
        request=MemberUpdateSerializer,
        responses={
            200: MemberSerializer,
            409: OpenApiResponse(
                MemberExistsSerializer,
                "`member_exists`: the new phone, email or external_id belongs to "
                "another member; `member_erased`: this member was erased.",
            ),
        },
    )
    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        given = MemberUpdateSerializer(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        changes = self._relations(dict(given.validated_data))
        consent_source = changes.pop("consent_source", "") or "api"
        try:
            update_member(
                member=member,
                changes=changes,
                actor_label=self._actor(),
                consent_source=consent_source,
            )
        except MemberExists as exc:
            return _existing(exc)
        return Response(MemberSerializer(self.get_queryset().get(pk=member.pk)).data)

    @extend_schema(
        summary="A member by the code on their card or QR code",
        parameters=[OpenApiParameter("code", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: MemberSerializer, 404: ErrorSerializer},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="by-code/<str:code>",
        filter_backends=[],
        pagination_class=None,
    )
    def by_code(self, request, code: str):
        member = (
            self.get_queryset().filter(member_code=member_code_of(code) or "").first()
        )
        if member is None:
            raise Http404
        return Response(MemberSerializer(member).data)

    @extend_schema(
        summary="The member's timeline: who changed what, newest first",
        responses=MemberChangeSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        filter_backends=[],
        pagination_class=IdCursorPagination,
    )
    def changes(self, request, pk=None):
        member = self.get_object()
        entries = MemberChange.objects.filter(
            shop=self.shop, member=member
        ).select_related("actor")
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(MemberChangeSerializer(page, many=True).data)

    @extend_schema(
        summary="Everything the shop holds about the member (data export)",
        responses=MemberExportSerializer,
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def export(self, request, pk=None):
        return Response(export_member_data(member=self.get_object()))

    @extend_schema(
        summary="Erase the member's personal data",
        description=(
            "Name, phone, email, birthday, notes, custom fields and external id "
            "are blanked, consent withdrawn, tags removed and the timeline's old "
            "values scrubbed. Purchases stay for the accounts. Erasing twice is "
            "harmless."
        ),
        request=None,
        responses={200: MemberSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def erase(self, request, pk=None):
        member = erase_member(member=self.get_object(), actor_label=self._actor())
        return Response(MemberSerializer(self.get_queryset().get(pk=member.pk)).data)


router = ApiRouter()
router.register("members", MemberViewSet, basename="member")
api_urlpatterns = router.urls
