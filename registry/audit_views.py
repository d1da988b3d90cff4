"""The audit trail's page and its CSV download (GET only, nothing is changed).

Who sees what:

- registry administrators (and superusers) see every record, with its origin
  (address, user agent, host);
- surveyors and case officers see the records of the projects they hold that
  role in (what was done to their project's parcels, imports and roles, and by
  whom), but not the origin: addresses and user agents of colleagues are
  personal data only administrators may read;
- everyone else (planners and analysts without a project role, users without a
  role) is refused (403); anonymous visitors are sent to the login page.
  Records without a project (district-wide roles, account rights, tokens,
  exports of the whole district) are therefore read by administrators only.

Filters: date range (Shanghai days, both ends included), actor (username),
action, project, object code (a parcel code also finds the bulk moves that
included it), channel. Newest first, 50 a page, by keyset (``before`` is the id
of the last record shown), so a page costs the same on the millionth record.
"""

import csv
import datetime
import json

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from registry import access, spreadsheet
from registry.choices import PROJECT_ROLES
from registry.models import AuditAction, AuditChannel, AuditRecord, Project
from registry.workflow import Move, Status

PAGE_SIZE = 50
CSV_CHUNK = 2000

# How the page names the kinds of objects and the keys of what changed (the
# records keep the plain keys; these are the catalogue's existing words).
KINDS = {
    "parcel": gettext_lazy("parcel"),
    "building": gettext_lazy("building"),
    "project": gettext_lazy("project"),
    "user": gettext_lazy("user"),
    "import_batch": gettext_lazy("import batch"),
    "export": gettext_lazy("export"),
}
KEYS = {
    "move": gettext_lazy("move"),
    "reason": gettext_lazy("reason"),
    "evidence_ref": gettext_lazy("evidence reference"),
    "banked_on": gettext_lazy("banked on"),
    "bank_ref": gettext_lazy("land bank reference"),
    "role": gettext_lazy("role"),
    "project": gettext_lazy("project"),
    "land_class": gettext_lazy("land class"),
    "declared_area_m2": gettext_lazy("declared area (m²)"),
    "area_m2": gettext_lazy("area (m²)"),
    "code": gettext_lazy("parcel code"),
    "street": gettext_lazy("street"),
    "layer": gettext_lazy("layer"),
    "file_name": gettext_lazy("file name"),
    "sha256": gettext_lazy("SHA-256"),
    "features": gettext_lazy("features"),
    "created": gettext_lazy("created"),
    "updated": gettext_lazy("updated"),
    "unchanged": gettext_lazy("unchanged"),
    "rejected": gettext_lazy("rejected"),
    "format": gettext_lazy("format"),
    "selection": gettext_lazy("selection"),
    "total_area_m2": gettext_lazy("total area (m²)"),
}


class AuditFilter(forms.Form):
    """The page's filters, all optional."""

    since = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    actor = forms.CharField(label=gettext_lazy("Actor"), required=False, max_length=150)
    action = forms.ChoiceField(label=gettext_lazy("Action"), required=False)
    project = forms.ChoiceField(label=gettext_lazy("Project"), required=False)
    code = forms.CharField(
        label=gettext_lazy("Object code"), required=False, max_length=255
    )
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), required=False)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, projects: QuerySet, **kwargs):
        super().__init__(*args, **kwargs)
        anything = [("", "—")]
        self.fields["action"].choices = anything + AuditAction.choices
        self.fields["channel"].choices = anything + AuditChannel.choices
        self.fields["project"].choices = anything + [
            (code, code) for code in projects.values_list("code", flat=True)
        ]

    def clean(self):
        """Refuse a date range that ends before it starts."""
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            raise forms.ValidationError(
                _("The end date %(until)s is before the start date %(since)s.")
                % {"until": until, "since": since}
            )
        return cleaned


def readable_records(user) -> tuple[QuerySet, bool] | None:
    """Return the records ``user`` may read and whether with their origin.

    None when the user may read none (see the module's docstring).
    """
    grants = access.grants_of(user)
    if grants.is_registry_admin:
        return AuditRecord.objects.all(), True
    projects = sorted(
        pk for pk, roles in grants.projects.items() if roles & PROJECT_ROLES
    )
    if not projects:
        return None
    return AuditRecord.objects.filter(project_id__in=projects), False


def _visible_projects(user) -> QuerySet:
    grants = access.grants_of(user)
    projects = Project.objects.order_by("code")
    if grants.is_registry_admin:
        return projects
    return projects.filter(pk__in=list(grants.projects))


def filtered(records: QuerySet, data: dict) -> QuerySet:
    """Return ``records`` narrowed by the cleaned filters, newest first."""
    zone = timezone.get_current_timezone()
    if data.get("since"):
        records = records.filter(
            at__gte=datetime.datetime.combine(data["since"], datetime.time(), zone)
        )
    if data.get("until"):
        day_after = data["until"] + datetime.timedelta(days=1)
        records = records.filter(
            at__lt=datetime.datetime.combine(day_after, datetime.time(), zone)
        )
    if data.get("actor"):
        records = records.filter(actor_username=data["actor"].strip())
    if data.get("action"):
        records = records.filter(action=data["action"])
    if data.get("project"):
        records = records.filter(project_code=data["project"])
    if data.get("code"):
        code = data["code"].strip()
        records = records.filter(
            Q(object_code=code) | Q(changes__contains={"parcels": [code]})
        )
    if data.get("channel"):
        records = records.filter(channel=data["channel"])
    return records.order_by("-at", "-pk")


def _refuse_unless_reader(request) -> tuple[QuerySet, bool]:
    readable = readable_records(request.user)
    if readable is None:
        raise PermissionDenied
    return readable


def _asked(request):
    """Return (form, filters, readable records, with origin), or a 400 page.

    The list and its CSV read the same filters the same way.
    """
    records, with_origin = _refuse_unless_reader(request)
    form = AuditFilter(request.GET or None, projects=_visible_projects(request.user))
    if request.GET and not form.is_valid():
        return render(
            request,
            "registry/audit.html",
            {"form": form, "rows": [], "with_origin": with_origin},
            status=400,
        )
    data = form.cleaned_data if request.GET else {}
    return form, data, records, with_origin


@require_safe
def audit_list(request):
    """List the audit records the user may read, filtered, newest first."""
    asked = _asked(request)
    if isinstance(asked, HttpResponse):
        return asked
    form, data, records, with_origin = asked
    selected = filtered(records, data)
    if data.get("before"):
        last = AuditRecord.objects.filter(pk=data["before"]).values("at").first()
        if last is not None:
            selected = selected.filter(
                Q(at__lt=last["at"]) | Q(at=last["at"], pk__lt=data["before"])
            )
    page = list(selected[: PAGE_SIZE + 1])
    more, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    query = request.GET.copy()
    query.pop("before", None)
    next_query = None
    if more:
        following = query.copy()
        following["before"] = page[-1].pk
        next_query = following.urlencode()
    return render(
        request,
        "registry/audit.html",
        {
            "form": form,
            "rows": [
                (
                    record,
                    KINDS.get(record.object_kind, record.object_kind),
                    describe(record),
                )
                for record in page
            ],
            "with_origin": with_origin,
            "filter_query": query.urlencode(),
            "next_query": next_query,
            "paged": bool(data.get("before")),
        },
    )


@require_safe
def audit_csv(request):
    """Download the filtered records as CSV (UTF-8 with BOM, for Excel)."""
    asked = _asked(request)
    if isinstance(asked, HttpResponse):
        return asked
    _form, data, records, with_origin = asked
    selected = filtered(records, {**data, "before": None})
    response = StreamingHttpResponse(
        _csv_rows(selected, with_origin), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


class _Echo:
    def write(self, value):
        return value


def _csv_rows(records: QuerySet, with_origin: bool):
    writer = csv.writer(_Echo())
    header = [
        _("when"),
        _("actor"),
        _("action"),
        _("object kind"),
        _("object id"),
        _("object code"),
        _("project"),
        _("what changed"),
        _("channel"),
    ]
    if with_origin:
        header += [_("remote address"), _("user agent"), _("host")]
    yield "\ufeff" + writer.writerow(header)
    zone = timezone.get_current_timezone()
    for record in records.iterator(chunk_size=CSV_CHUNK):
        row = [
            record.at.astimezone(zone).isoformat(timespec="seconds"),
            record.actor_username,
            record.get_action_display(),
            record.object_kind,
            "" if record.object_id is None else record.object_id,
            record.object_code,
            record.project_code,
            json.dumps(record.changes, ensure_ascii=False, sort_keys=True),
            record.get_channel_display(),
        ]
        if with_origin:
            row += [record.remote_addr or "", record.user_agent, record.host]
        yield writer.writerow(spreadsheet.row(row))


def describe(record: AuditRecord) -> str:
    """Return a short reading of what a record changed, for the page."""
    changes = dict(record.changes)
    parts = []
    if "from_status" in changes and "to_status" in changes:
        parts.append(
            f"{_status(changes.pop('from_status'))} → "
            f"{_status(changes.pop('to_status'))}"
        )
    elif "to_status" in changes:
        parts.append(f"→ {_status(changes.pop('to_status'))}")
    if "parcels" in changes:
        parcels = changes.pop("parcels")
        shown = ", ".join(parcels[:10]) + ("…" if len(parcels) > 10 else "")
        parts.append(_("parcels: %(codes)s") % {"codes": shown})
    for key, value in changes.items():
        if value in ("", None, [], {}):
            continue
        if key == "move" and value in Move.values:
            value = Move(value).label
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            value = f"{_plain(value['from'])} → {_plain(value['to'])}"
        parts.append(f"{KEYS.get(key, key)}: {_plain(value)}")
    return "; ".join(parts)


def _status(value) -> str:
    return Status(value).label if value in Status.values else str(value or "—")


def _plain(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "—" if value is None else str(value)
