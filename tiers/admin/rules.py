"""Saving the ladder or the policy is a rule change: the form checks the whole
proposed ladder (`validate_ladder`), the staff member sees how many members
would move up and down, then chooses when it applies (`apply_rule_change`).

`RuleChangeAdminMixin` gives an admin that flow: the first POST of a valid form
that changes a rule renders the confirmation page (nothing saved) with the
posted values carried in hidden fields; posting it again with `_apply_mode`
saves through the service. A save that changes no rule (a colour, a
description) is saved at once, through the same service.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tiers.services.ladder import validate_ladder
from tiers.services.recalculation import apply_rule_change, preview_rule_change

MODE_FIELD = "_apply_mode"
MODE_NEXT_PURCHASE = "next_purchase"
MODE_NOW = "now"
MODES = (MODE_NEXT_PURCHASE, MODE_NOW)


class RuleChangeForm:
    """Mixed into a ModelForm (with `request`): `proposal()` gives the ladder
    and policy the save would leave, `changes_rules()` whether members may
    move because of it. Refusals of `validate_ladder` become form errors."""

    rule_fields: frozenset[str] = frozenset()
    error_fields: dict[str, str] = {}

    def proposal(self):
        raise NotImplementedError

    def changes_rules(self) -> bool:
        if self.instance._state.adding:
            return True
        return bool(self.rule_fields & set(self.changed_data))

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        tiers, policy = self.proposal()
        try:
            validate_ladder(shop=self.request.shop, tiers=tiers, policy=policy)
        except ValidationError as error:
            self._add_service_errors(error)

    def _add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                field = self.error_fields.get(name, name)
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


class RuleChangeAdminMixin:
    confirm_template = "admin/tiers/confirm_rule_change.html"

    def _posted_form(self, request, object_id):
        obj = None
        if object_id is not None:
            obj = self.get_object(request, object_id)
            if obj is None:
                raise Http404
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        form_class = self.get_form(request, obj, change=obj is not None)
        return form_class(request.POST, request.FILES, instance=obj), obj

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        posted = request.method == "POST" and "_popup" not in request.POST
        if posted and request.POST.get(MODE_FIELD) not in MODES:
            form, obj = self._posted_form(request, object_id)
            if form.is_valid() and form.changes_rules():
                return self.confirmation(request, form, obj)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def confirmation(self, request, form, obj):
        tiers, policy = form.proposal()
        preview = preview_rule_change(shop=request.shop, tiers=tiers, policy=policy)
        carried = [
            (name, value)
            for name, values in request.POST.lists()
            if name not in ("csrfmiddlewaretoken", MODE_FIELD)
            for value in values
        ]
        return TemplateResponse(
            request,
            self.confirm_template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "object": obj,
                "title": gettext("Apply the new tier rules?"),
                "preview": preview,
                "carried": carried,
                "tiers": sorted(tiers, key=lambda t: t.rank),
                "policy": policy,
                "mode_field": MODE_FIELD,
                "modes": [
                    (
                        MODE_NEXT_PURCHASE,
                        _("Apply at each member's next purchase"),
                        _(
                            "Nobody moves now; each member is evaluated under the "
                            "new rules at their next completed purchase."
                        ),
                    ),
                    (
                        MODE_NOW,
                        _("Recalculate everyone now"),
                        _(
                            "Every member is placed under the new rules now; the "
                            "moves above happen and are in their tier history."
                        ),
                    ),
                ],
            },
        )

    def apply_mode(self, request) -> str:
        mode = request.POST.get(MODE_FIELD)
        return mode if mode in MODES else MODE_NEXT_PURCHASE

    def save_through_service(self, request, form) -> None:
        tiers, policy = form.proposal()
        try:
            recalculation = apply_rule_change(
                shop=request.shop,
                tiers=tiers,
                policy=policy,
                mode=self.apply_mode(request),
                acting_user=request.user,
            )
        except ValidationError as error:
            # Someone changed the ladder in between: nothing was saved.
            raise PermissionDenied(" ".join(error.messages)) from error
        request._tier_recalculation = recalculation

    def _after_save(self, request, response):
        recalculation = getattr(request, "_tier_recalculation", None)
        if recalculation is None:
            return response
        return HttpResponseRedirect(
            reverse("admin:tiers_tierrecalculation_change", args=[recalculation.pk])
        )

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(
            request, super().response_add(request, obj, post_url_continue)
        )

    def response_change(self, request, obj):
        return self._after_save(request, super().response_change(request, obj))
