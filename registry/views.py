"""Pages of the registry; thin: check access, ask a selector, render."""

import csv

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from registry import access, selectors, spreadsheet, statistics
from registry.choices import LandClass
from registry.models import Project
from registry.workflow import ORDER


@require_safe
def home(request):
    """List every project with its cleared, uncleared and banked land."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    return render(
        request,
        "registry/home.html",
        {
            "overview": selectors.project_overview(),
            "roles": access.roles_of(request.user),
        },
    )


def _project_rows():
    cells = statistics.area_cells()
    rows = []
    for project in Project.objects.order_by("code"):
        summary = statistics.summarise(cells, project=project.code)
        rows.append((project, summary))
    return cells, rows


@require_safe
def dashboard(request):
    """Show headline figures, progress charts and the per-project table."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    cells, rows = _project_rows()
    district = statistics.summarise(cells)
    codes = [project.code for project, _summary in rows]
    stacks = []
    for land_class in LandClass:
        for status in ORDER:
            stacks.append(
                {
                    "label": f"{land_class.label} · {status.label}",
                    "stack": land_class.value,
                    "status": status.value,
                    "data": [
                        round(
                            statistics.summarise(
                                cells,
                                project=code,
                                land_class=land_class.value,
                                status=status.value,
                            ).area_m2
                            / 1e6,
                            4,
                        )
                        for code in codes
                    ],
                }
            )
    banked = statistics.banked_over_time(period="month")
    return render(
        request,
        "registry/dashboard.html",
        {
            "district": district,
            "banked_km2": district.banked_m2 / 1e6,
            "banked_share": district.banked_m2 / 1e6 / statistics.DISTRICT_AREA_KM2,
            "district_km2": statistics.DISTRICT_AREA_KM2,
            "rows": rows,
            "land_classes": LandClass.choices,
            "statuses": [(status.value, status.label) for status in ORDER],
            "chart_data": {
                "projects": codes,
                "stacks": stacks,
                "months": [start.isoformat()[:7] for start, *_rest in banked],
                "cumulative_km2": [round(total / 1e6, 4) for *_rest, total in banked],
            },
        },
    )


@require_safe
def dashboard_csv(request):
    """Download the per-project table as CSV (UTF-8 with BOM, for Excel)."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    _cells, rows = _project_rows()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="progress.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            _("code"),
            _("project"),
            _("parcels"),
            _("registered area (km²)"),
            _("cleared (km²)"),
            _("uncleared (km²)"),
            _("banked (km²)"),
            _("planned area (km²)"),
        ]
    )
    for project, summary in rows:
        writer.writerow(
            [
                spreadsheet.cell(project.code),
                spreadsheet.cell(project.name_zh),
                summary.parcels,
                f"{summary.area_m2 / 1e6:.4f}",
                f"{summary.cleared_m2 / 1e6:.4f}",
                f"{summary.uncleared_m2 / 1e6:.4f}",
                f"{summary.banked_m2 / 1e6:.4f}",
                f"{project.planned_area_m2 / 1e6:.4f}",
            ]
        )
    return response
