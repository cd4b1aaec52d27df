"""Admin of the members app: imports (upload, mapping, dry run, progress, result)
and exports of the member and purchase lists (CSV, Excel), managers and owners.

The member and purchase admins add the export button by mixing in
`ExportActionsMixin` and naming `export_list` in their `actions_list`; the
button carries the list's current filters and search to the export page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display

from members.models import ImportJob, ImportKind, ImportStatus, Member, Purchase
from members.services import exports
from members.services import imports as services
from shops.admin.base import MANAGERS, ShopScopedAdmin, role_allows

SHOWN_ERRORS = 200
EXPORT_PARAMS = ("format", "mask")


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What the file holds"),
        choices=ImportKind.choices,
        widget=forms.RadioSelect,
        initial=ImportKind.MEMBERS,
    )
    file = forms.FileField(
        label=_("File"), help_text=_("CSV (UTF-8 or GBK) or Excel (.xlsx).")
    )


class MappingForm(forms.Form):
    duplicates = forms.ChoiceField(
        label=_("Rows for members already in the shop"),
        choices=[
            ("skip", _("Skip them (keep the member as is)")),
            ("update", _("Update the member with the file's values")),
        ],
        widget=forms.RadioSelect,
    )
    mode = forms.ChoiceField(
        label=_("When some rows have problems"),
        choices=[
            ("valid_only", _("Import the good rows, list the bad ones")),
            ("all_or_nothing", _("Import nothing until every row is right")),
        ],
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", _("— ignore this column —")), *services.fields_for(
            job.kind, shop=job.shop
        )]  # fmt: skip
        self.headers = job.options.get("headers", [])
        for index, header in enumerate(self.headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header or f"#{index + 1}",
                choices=choices,
                required=False,
                initial=job.mapping.get(header, ""),
            )
        self.initial.setdefault("duplicates", job.options.get("duplicates", "skip"))
        self.initial.setdefault("mode", job.options.get("mode", "valid_only"))

    def column_fields(self):
        return [self[f"column_{i}"] for i in range(len(self.headers))]

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data.get(f"column_{i}") or ""
            for i, header in enumerate(self.headers)
            if header
        }


@admin.register(ImportJob)
class ImportJobAdmin(ShopScopedAdmin):
    view_roles = add_roles = change_roles = MANAGERS
    list_display = ("original_name", "kind", "status", "progress", "created_at")
    list_filter = ("kind", "status")

    @display(description=_("Rows"))
    def progress(self, obj):
        return f"{obj.processed_rows} / {obj.total_rows}"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        views = [
            ("<int:job_id>/status/", self.status_view, "members_importjob_status"),
            ("<int:job_id>/errors.csv", self.errors_view, "members_importjob_errors"),
            ("export/members/", self.export_members_view, "members_export_members"),
            (
                "export/purchases/",
                self.export_purchases_view,
                "members_export_purchases",
            ),
        ]
        return [
            *(path(route, wrap(view), name=name) for route, view, name in views),
            *super().get_urls(),
        ]

    def _page(self, request, template, title, **context):
        return TemplateResponse(
            request,
            f"admin/members/imports/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                **context,
            },
        )

    def _job(self, request, job_id) -> ImportJob:
        if not self.has_view_permission(request) or request.shop is None:
            raise PermissionDenied
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None:
            raise Http404
        return job

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = services.create_import_job(
                    shop=request.shop,
                    kind=form.cleaned_data["kind"],
                    upload=form.cleaned_data["file"],
                    acting_user=request.user,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("file", message)
            else:
                return redirect("admin:members_importjob_change", job.pk)
        return self._page(request, "upload.html", gettext("Import a file"), form=form)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, object_id)
        editable = job.status not in (
            ImportStatus.QUEUED,
            ImportStatus.RUNNING,
            ImportStatus.DONE,
        )
        form = MappingForm(request.POST if request.method == "POST" else None, job=job)
        if request.method == "POST":
            if not self.has_change_permission(request, job):
                raise PermissionDenied
            try:
                if request.POST.get("action") == "import":
                    services.start_import(
                        job=job, dry_run=False, acting_user=request.user
                    )
                    return redirect("admin:members_importjob_change", job.pk)
                if form.is_valid():
                    services.configure_import(
                        job=job,
                        mapping=form.mapping(),
                        duplicates=form.cleaned_data["duplicates"],
                        mode=form.cleaned_data["mode"],
                        acting_user=request.user,
                    )
                    services.start_import(
                        job=job, dry_run=True, acting_user=request.user
                    )
                    return redirect("admin:members_importjob_change", job.pk)
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
        return self._page(
            request,
            "job.html",
            str(job),
            job=job,
            form=form,
            editable=editable,
            running=job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
            preview=job.options.get("preview"),
            shown_errors=job.errors[:SHOWN_ERRORS],
            more_errors=max(len(job.errors) - SHOWN_ERRORS, 0),
        )

    def status_view(self, request, job_id):
        """The progress bar alone, polled by htmx; the whole page once finished."""
        job = self._job(request, job_id)
        response = self._page(request, "progress.html", str(job), job=job)
        if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            response["HX-Refresh"] = "true"
        return response

    def errors_view(self, request, job_id):
        job = self._job(request, job_id)
        response = StreamingHttpResponse(
            exports.write_csv(services.error_rows(job)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="import-{job.pk}-errors.csv"'
        )
        return response

    # Exports ---------------------------------------------------------------

    def _export(self, request, model, build, name):
        if request.shop is None or not role_allows(request, MANAGERS):
            raise PermissionDenied
        queryset = changelist_queryset(request, model)
        if request.GET.get("format") not in ("csv", "xlsx"):
            params = request.GET.copy()
            for param in EXPORT_PARAMS:
                params.pop(param, None)
            return TemplateResponse(
                request,
                "admin/members/exports/options.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": model._meta,
                    "title": gettext("Export %(what)s")
                    % {"what": model._meta.verbose_name_plural},
                    "filters": params,
                    "count": queryset.count(),
                },
            )
        export = build(
            shop=request.shop,
            queryset=queryset,
            mask_phones=request.GET.get("mask") in ("1", "on", "true"),
        )
        stamp = timezone.localtime(timezone.now(), request.shop.zone)
        filename = f"{name}-{stamp:%Y%m%d-%H%M}"
        if request.GET.get("format") == "xlsx":
            return FileResponse(
                exports.xlsx_file(export, title=name),
                as_attachment=True,
                filename=f"{filename}.xlsx",
                content_type=(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                ),
            )
        response = StreamingHttpResponse(
            exports.csv_chunks(export), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response

    def export_members_view(self, request):
        return self._export(request, Member, exports.member_export, "members")

    def export_purchases_view(self, request):
        return self._export(request, Purchase, exports.purchase_export, "purchases")


def changelist_queryset(request, model):
    """`model`'s rows as its admin list shows them with the request's filters.

    The query string is the list's own (filters, search `q`, ordering `o`),
    without the export's `format` and `mask`.
    """
    model_admin = admin.site._registry.get(model)
    params = request.GET.copy()
    for name in EXPORT_PARAMS:
        params.pop(name, None)
    if model_admin is None:
        return model.objects.all()
    original = request.GET
    request.GET = params
    try:
        changelist = model_admin.get_changelist_instance(request)
        return changelist.get_queryset(request)
    except Exception as exc:
        # IncorrectLookupParameters and its kind: a filter the list refuses.
        raise Http404(gettext("These filters are not valid.")) from exc
    finally:
        request.GET = original


class ExportActionsMixin:
    """An "Export" button for a changelist (members or purchases): add
    "export_list" to `actions_list` (and, for purchases, set `export_url_name`
    to "admin:members_export_purchases"). It opens the export page (CSV or
    Excel, phones masked or not) for the list as filtered: the filters come
    from the list page the button was clicked on."""

    export_url_name = "admin:members_export_members"

    def has_export_permission(self, request, obj=None):
        return request.shop is not None and role_allows(request, MANAGERS)

    def _export_redirect(self, request):
        query = QueryDict(mutable=True)
        referer = urlsplit(request.META.get("HTTP_REFERER", ""))
        list_path = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        if referer.path == list_path:
            query = QueryDict(referer.query, mutable=True)
        return redirect(f"{reverse(self.export_url_name)}?{query.urlencode()}")

    @action(description=_("Export"), permissions=["export"], icon="download")
    def export_list(self, request):
        return self._export_redirect(request)
