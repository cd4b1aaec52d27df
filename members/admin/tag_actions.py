"""Admin actions on the member list that tag and untag many members at once.

`TAG_ACTIONS` is included in the member admin's actions. Each shows a page to
choose the tag(s), then runs on the selected rows or, with "select all", on
every member matching the list's filters (Django passes that queryset), as a
few set-based statements; from `BACKGROUND_FROM` members, by a worker (a
`TagJob`, listed under "Tagging jobs"). Managers and owners only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelectWidget

from members.models import Tag, TagJobAction
from members.services import tags as services
from shops.admin.base import MANAGERS, role_allows


def _tag_field(label):
    return forms.ModelChoiceField(
        label=label,
        # Empty at import (no shop yet); the form sets the request's shop's tags.
        queryset=Tag.objects.unscoped().none(),
        widget=UnfoldAdminSelectWidget,
        empty_label=_("Choose a tag"),
    )


class TagChoiceForm(forms.Form):
    tag = _tag_field(_("Tag"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.queryset = Tag.objects.all()  # the request's shop


class MoveTagForm(TagChoiceForm):
    tag = None
    from_tag = _tag_field(_("Take off this tag"))
    to_tag = _tag_field(_("Give this tag instead"))

    def clean(self):
        data = super().clean()
        if data.get("from_tag") and data.get("from_tag") == data.get("to_tag"):
            raise ValidationError(_("Choose two different tags."))
        return data


def _run(
    modeladmin, request, queryset, *, form_class, title, intro, perform, job_action
):
    if request.shop is None or not role_allows(request, MANAGERS):
        messages.error(request, gettext("Only managers and owners can tag members."))
        return None
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        count = queryset.count()
        if count >= services.BACKGROUND_FROM:
            messages.success(
                request,
                _in_background(request, queryset, count, job_action, form.cleaned_data),
            )
        else:
            messages.success(request, perform(request, queryset, form.cleaned_data))
        return None  # back to the list, with its filters
    return TemplateResponse(
        request,
        "admin/members/tags/bulk_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.model._meta,
            "title": title,
            "intro": intro,
            "form": form,
            "count": queryset.count(),
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


def _in_background(request, members, count: int, action: str, data: dict):
    """Queue a tagging job for a long list; the message links to it."""
    if action == TagJobAction.MOVE:
        tags = {"tag": data["to_tag"], "from_tag": data["from_tag"]}
    else:
        tags = {"tag": data["tag"]}
    job = services.queue_tag_job(
        shop=request.shop,
        action=action,
        members=members,
        count=count,
        acting_user=request.user,
        **tags,
    )
    return format_html(
        '{} <a href="{}">{}</a>',
        ngettext(
            "%(count)d member is being tagged in the background.",
            "%(count)d members are being tagged in the background.",
            count,
        )
        % {"count": count},
        reverse("admin:members_tagjob_change", args=[job.pk]),
        gettext("See how it goes"),
    )


@admin.action(description=_("Add tag…"), permissions=["change"])
def add_tag_to_members(modeladmin, request, queryset):
    def perform(request, members, data):
        count = services.add_tag(
            shop=request.shop,
            members=members,
            tag=data["tag"],
            acting_user=request.user,
        )
        return ngettext(
            "%(count)d member got the tag “%(tag)s”.",
            "%(count)d members got the tag “%(tag)s”.",
            count,
        ) % {"count": count, "tag": data["tag"].name}

    return _run(
        modeladmin,
        request,
        queryset,
        form_class=TagChoiceForm,
        title=gettext("Add a tag"),
        intro=gettext("Give the chosen members this tag."),
        perform=perform,
        job_action=TagJobAction.ADD,
    )


@admin.action(description=_("Remove tag…"), permissions=["change"])
def remove_tag_from_members(modeladmin, request, queryset):
    def perform(request, members, data):
        count = services.remove_tag(
            shop=request.shop,
            members=members,
            tag=data["tag"],
            acting_user=request.user,
        )
        return ngettext(
            "Took “%(tag)s” off %(count)d member.",
            "Took “%(tag)s” off %(count)d members.",
            count,
        ) % {"count": count, "tag": data["tag"].name}

    return _run(
        modeladmin,
        request,
        queryset,
        form_class=TagChoiceForm,
        title=gettext("Remove a tag"),
        intro=gettext(
            "Take this tag off the chosen members. A tag that its rules give "
            "comes back while the member still meets them."
        ),
        perform=perform,
        job_action=TagJobAction.REMOVE,
    )


@admin.action(description=_("Move from one tag to another…"), permissions=["change"])
def move_members_between_tags(modeladmin, request, queryset):
    def perform(request, members, data):
        count = services.move_tag(
            shop=request.shop,
            members=members,
            from_tag=data["from_tag"],
            to_tag=data["to_tag"],
            acting_user=request.user,
        )
        return ngettext(
            "Moved %(count)d member from “%(old)s” to “%(new)s”.",
            "Moved %(count)d members from “%(old)s” to “%(new)s”.",
            count,
        ) % {"count": count, "old": data["from_tag"].name, "new": data["to_tag"].name}

    return _run(
        modeladmin,
        request,
        queryset,
        form_class=MoveTagForm,
        title=gettext("Move members from one tag to another"),
        intro=gettext(
            "Chosen members who have the first tag lose it and get the second."
        ),
        perform=perform,
        job_action=TagJobAction.MOVE,
    )


TAG_ACTIONS: list = [
    add_tag_to_members,
    remove_tag_from_members,
    move_members_between_tags,
]
