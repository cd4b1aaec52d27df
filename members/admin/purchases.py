"""Admin of the members app: purchases.

Everyone sees purchases (a clerk limited to some stores: only those stores',
others are 404) and records one at the counter (a page: find the member by
phone or member code); everyone may complete a pending purchase; managers and
owners refund and cancel. Nobody edits a purchase by hand: every change goes
through `members.services.purchases`. The member page gets a purchases panel.
"""

from __future__ import annotations

import secrets

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display

from members.models import Purchase, PurchaseLine, Refund
from members.selectors.purchases import (
    allowed_store_ids,
    latest_purchases,
    purchases_visible_to,
)
from members.services import purchases as purchase_services
from shops.admin.base import (
    EVERYONE,
    MANAGERS,
    CappedCountPaginator,
    ShopScopedAdmin,
    ShopScopedInline,
    role_allows,
)
from shops.errors import DomainError
from shops.models import Store
from shops.tenancy import shop_scope

from .imports import ExportActionsMixin
from .panels import MemberPanel, register_member_panel
from .purchase_forms import RecordPurchaseForm, RefundForm, form_errors_from


def member_url(member_id) -> str | None:
    try:
        return reverse("admin:members_member_change", args=[member_id])
    except NoReverseMatch:
        return None


class StoreListFilter(admin.SimpleListFilter):
    """Stores to filter by: only those the staff member may see."""

    title = _("store")
    parameter_name = "store"

    def lookups(self, request, model_admin):
        if request.shop is None:  # a superuser's all-shops view
            return []
        stores = Store.objects.all()
        allowed = allowed_store_ids(getattr(request, "membership", None))
        if allowed is not None:
            stores = stores.filter(pk__in=allowed)
        return [(str(store.pk), str(store)) for store in stores]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(store_id=int(value))
        return queryset


class ReadOnlyInline(ShopScopedInline):
    can_delete = False
    view_roles = EVERYONE

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PurchaseLineInline(ReadOnlyInline):
    model = PurchaseLine
    fields = ("sku", "name", "quantity", "unit_price", "refunded_quantity")
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("created_at", "amount", "reason", "external_refund_id", "created_by")
    readonly_fields = fields


@admin.register(Purchase)
class PurchaseAdmin(ExportActionsMixin, ShopScopedAdmin):
    # The module whose record/complete/cancel/refund_purchase the pages call;
    # the points app registers a subclass that settles purchases (figures,
    # tier, points) in one transaction (this app cannot import it).
    services = purchase_services
    view_roles = add_roles = EVERYONE
    change_roles = delete_roles = frozenset()
    list_display = (
        "external_order_id",
        "member_link",
        "store",
        "paid_amount",
        "refunded_amount",
        "status",
        "channel",
        "occurred_at",
    )
    list_filter = (
        StoreListFilter,
        "status",
        "channel",
        ("occurred_at", admin.DateFieldListFilter),
    )
    search_fields = ("external_order_id",)
    search_help_text = _("Order number, member code or the member's phone.")
    list_select_related = ("member", "store")
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = (
        "external_order_id",
        "member_link",
        "store",
        "status",
        "amount",
        "discount",
        "paid_amount",
        "refunded_amount",
        "currency",
        "channel",
        "occurred_at",
        "completed_at",
        "cancelled_at",
        "note",
        "created_by",
        "created_at",
    )
    readonly_fields = fields
    inlines = (PurchaseLineInline, RefundInline)
    actions_detail = ("complete_detail", "refund_detail", "cancel_detail")
    actions_list = ("record_list", "export_list")
    export_url_name = "admin:members_export_purchases"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("member", "store")
        store_ids = allowed_store_ids(getattr(request, "membership", None))
        return purchases_visible_to(queryset, store_ids=store_ids)

    def get_search_results(self, request, queryset, search_term):
        """Exact order number, member code or phone (also its last four digits):
        each served by a shop-led index, never a scan of the purchases."""
        from members.selectors.purchases import member_at_counter

        term = search_term.strip()
        if not term:
            return queryset, False
        if request.shop is None:  # a superuser's all-shops view: orders only
            return queryset.filter(external_order_id=term), False
        member = member_at_counter(shop=request.shop, text=term)
        by_order = queryset.filter(external_order_id=term)
        if member is None:
            return by_order, False
        return by_order | queryset.filter(member=member), False

    @display(description=_("member"), ordering="member__name")
    def member_link(self, obj):
        url = member_url(obj.member_id)
        label = f"{obj.member} ({obj.member.member_code})"
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    # Adding is the counter page, not Django's model form.
    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:members_purchase_record")

    def get_urls(self):
        record = self.admin_site.admin_view(self.record_view)
        return [
            path("record/", record, name="members_purchase_record"),
            *super().get_urls(),
        ]

    def has_complete_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, EVERYONE)

    def has_refund_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    has_cancel_permission = has_refund_permission

    def has_record_permission(self, request, obj=None):
        return self.has_add_permission(request)

    def _page(self, request, template, title, **context):
        return TemplateResponse(
            request,
            f"admin/members/purchases/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                **context,
            },
        )

    def _purchase(self, request, object_id) -> Purchase:
        purchase = self.get_object(request, object_id)
        if purchase is None:
            raise Http404
        return purchase

    def _done(self, purchase):
        return redirect("admin:members_purchase_change", purchase.pk)

    @action(
        description=_("Record a purchase"),
        url_path="record-purchase",
        permissions=["record"],
        icon="point_of_sale",
    )
    def record_list(self, request):
        return redirect("admin:members_purchase_record")

    def record_view(self, request):
        if request.shop is None or not self.has_add_permission(request):
            raise PermissionDenied
        form = RecordPurchaseForm(
            request.POST or None, request=request, initial=_record_initial(request)
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                purchase = self.services.record_purchase(
                    shop=request.shop,
                    member=data["member"],
                    external_order_id=data["external_order_id"]
                    or _counter_order_number(),
                    amount=data["amount"],
                    discount=data["discount"] or 0,
                    store=data["store"],
                    channel=data["channel"],
                    complete=data["complete"],
                    note=data["note"],
                    acting_user=request.user,
                )
            except (ValidationError, DomainError) as exc:
                form_errors_from(form, exc)
            else:
                messages.success(
                    request,
                    gettext(
                        "Purchase %(order)s recorded for %(member)s: %(count)d "
                        "orders, %(spent)s spent in all."
                    )
                    % {
                        "order": purchase.external_order_id,
                        "member": purchase.member,
                        "count": purchase.member.order_count,
                        "spent": purchase.member.total_spent,
                    },
                )
                return self._done(purchase)
        return self._page(
            request, "record.html", gettext("Record a purchase"), form=form
        )

    @action(
        description=_("Complete"),
        url_path="complete",
        permissions=["complete"],
        icon="check_circle",
    )
    def complete_detail(self, request, object_id):
        purchase = self._purchase(request, object_id)
        if request.method != "POST":
            return self._page(
                request,
                "confirm.html",
                gettext("Complete this purchase?"),
                object=purchase,
                message=gettext(
                    "The customer has received the goods: the purchase counts "
                    "in the member's spend and orders from now."
                ),
                button=gettext("Yes, complete it"),
            )
        return self._run(
            request,
            purchase,
            self.services.complete_purchase,
            gettext("The purchase is completed."),
        )

    @action(
        description=_("Cancel"), url_path="cancel", permissions=["cancel"], icon="block"
    )
    def cancel_detail(self, request, object_id):
        purchase = self._purchase(request, object_id)
        if request.method != "POST":
            return self._page(
                request,
                "confirm.html",
                gettext("Cancel this purchase?"),
                object=purchase,
                message=gettext(
                    "Only a pending purchase can be cancelled; it never counted. "
                    "A completed purchase is refunded instead."
                ),
                button=gettext("Yes, cancel it"),
            )
        return self._run(
            request,
            purchase,
            self.services.cancel_purchase,
            gettext("The purchase is cancelled."),
        )

    def _run(self, request, purchase, service, success):
        try:
            service(purchase=purchase, acting_user=request.user)
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, success)
        return self._done(purchase)

    @action(
        description=_("Refund"), url_path="refund", permissions=["refund"], icon="undo"
    )
    def refund_detail(self, request, object_id):
        purchase = self._purchase(request, object_id)
        lines = list(purchase.lines.all())
        form = RefundForm(request.POST or None, lines=lines)
        if request.method == "POST" and form.is_valid():
            try:
                refund = self.services.refund_purchase(
                    purchase=purchase,
                    amount=form.cleaned_data["amount"],
                    lines=form.line_quantities() or None,
                    reason=form.cleaned_data["reason"],
                    acting_user=request.user,
                )
            except (ValidationError, DomainError) as exc:
                form_errors_from(form, exc)
            else:
                messages.success(
                    request,
                    gettext("Refunded %(amount)s.") % {"amount": refund.amount},
                )
                return self._done(purchase)
        return self._page(
            request,
            "refund.html",
            gettext("Refund purchase %(order)s") % {"order": purchase},
            form=form,
            object=purchase,
            left=purchase.paid_amount - purchase.refunded_amount,
        )


def _counter_order_number() -> str:
    # Unique enough per shop (the database checks): time to the second + 6 hex.
    return f"C{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(3).upper()}"


def _record_initial(request) -> dict:
    initial: dict = {"complete": True, "channel": "store"}
    member_id = request.GET.get("member", "")
    if member_id.isdigit() and len(member_id) < 19:
        from members.models import Member

        member = Member.objects.filter(pk=int(member_id)).first()
        if member is not None:
            initial["member"] = member.member_code
    store_ids = allowed_store_ids(getattr(request, "membership", None))
    if store_ids:
        initial["store"] = store_ids[0]
    return initial


def _panel_context(request, member) -> dict:
    if request.shop is None:
        # A superuser's all-shops view: read in the member's own shop.
        with shop_scope(member.shop):
            return _panel_context_in_shop(request, member)
    return _panel_context_in_shop(request, member)


def _panel_context_in_shop(request, member) -> dict:
    store_ids = allowed_store_ids(getattr(request, "membership", None))
    try:
        record_url = reverse("admin:members_purchase_record")
        list_url = reverse("admin:members_purchase_changelist")
    except NoReverseMatch:  # pragma: no cover - the admin is always registered
        record_url = list_url = ""
    return {
        "purchases": latest_purchases(member=member, store_ids=store_ids),
        "record_url": f"{record_url}?member={member.pk}",
        "list_url": f"{list_url}?member__id__exact={member.pk}",
        "can_record": request.shop is not None,
    }


register_member_panel(
    MemberPanel(
        key="purchases",
        title=_("Purchases"),
        order=20,
        template="admin/members/panels/purchases.html",
        context=_panel_context,
    )
)
