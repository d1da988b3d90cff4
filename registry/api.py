"""Registry API for analysts: progress statistics and exports of banked land."""

import tempfile
from pathlib import Path

from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from registry import access, exports, query_params, statistics
from registry.models import ExportLog, Project
from registry.moments import parse_day, parse_moment
from registry.workflow import Status
from spatial.api_crs import CRS84


@extend_schema(tags=["statistics"], responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def progress(request):
    """Return area and parcel counts per project, land class, status and street."""
    access.refuse_unless_reader(request.user)
    as_of = parse_moment(request.query_params.get("as_of"))
    cells = statistics.area_cells(as_of=as_of)
    district = statistics.summarise(cells)
    projects = []
    for project in Project.objects.order_by("code"):
        summary = statistics.summarise(cells, project=project.code)
        projects.append(
            {
                "code": project.code,
                "name_zh": project.name_zh,
                "name_en": project.name_en,
                "planned_area_m2": project.planned_area_m2,
                **_figures(summary),
                "cleared_of_planned": summary.cleared_m2 / project.planned_area_m2,
            }
        )
    return Response(
        {
            "as_of": as_of.isoformat() if as_of else None,
            "district": {
                **_figures(district),
                "district_area_km2": statistics.DISTRICT_AREA_KM2,
                "banked_share_of_district": district.banked_m2
                / 1e6
                / statistics.DISTRICT_AREA_KM2,
            },
            "projects": projects,
            "cells": [
                {
                    "project": c.project,
                    "land_class": c.land_class,
                    "status": c.status,
                    "street": c.street,
                    "cleared": c.cleared,
                    "parcels": c.parcels,
                    "area_m2": c.area_m2,
                }
                for c in cells
            ],
        }
    )


@extend_schema(
    tags=["statistics"],
    responses={200: build_array_type(build_basic_type(OpenApiTypes.OBJECT))},
)
@api_view(["GET"])
def banked(request):
    """Return the area moved into the land bank per period, and cumulatively."""
    access.refuse_unless_reader(request.user)
    period = request.query_params.get("period", "month")
    query_params.choices_of(period, ("month", "quarter", "year"), parameter="period")
    rows = statistics.banked_over_time(
        period=period, until=parse_moment(request.query_params.get("as_of"))
    )
    return Response(
        [
            {
                "period_start": start.isoformat(),
                "banked_m2": banked_m2,
                "unbanked_m2": unbanked_m2,
                "cumulative_m2": cumulative,
            }
            for start, banked_m2, unbanked_m2, cumulative in rows
        ]
    )


def _figures(summary: statistics.Summary) -> dict:
    return {
        "parcels": summary.parcels,
        "area_m2": summary.area_m2,
        "cleared_m2": summary.cleared_m2,
        "uncleared_m2": summary.uncleared_m2,
        "banked_m2": summary.banked_m2,
        "area_km2": summary.area_m2 / 1e6,
        "banked_km2": summary.banked_m2 / 1e6,
    }


# GeoJSON is streamed as it is; the other formats come zipped with a manifest.
EXPORTED = {
    (200, "application/geo+json"): OpenApiTypes.OBJECT,
    (200, "application/zip"): OpenApiTypes.BINARY,
}


@extend_schema(methods=["GET"], tags=["exports"], responses=EXPORTED)
@extend_schema(
    methods=["POST"],
    tags=["exports"],
    operation_id="exports_banked_selection",
    request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
    responses=EXPORTED,
)
@api_view(["GET", "POST"])
def export_banked(request):
    """Export banked parcels (analysts and registry admins); every export is logged.

    ``format``: geojson (streamed), gpkg, shp, fgb, csv (zipped with manifest.json).
    Filters: project, land_class, street, banked_from, banked_to, as_of; ``status``
    (``banked`` by default, other statuses comma-separated, or ``all``: the map's
    selection exports every parcel it lists); ``geometry`` (a GeoJSON geometry in
    CRS84, the map's drawn area) or ``bbox``.
    """
    exports.check_allowed(request.user)
    # A map selection's polygon can outgrow a URL: the same fields may come as a
    # POSTed form (a read all the same; CSRF applies to sessions).
    query = request.query_params if request.method == "GET" else request.data
    fmt = query.get("format", "geojson")
    query_params.choices_of(fmt, exports.FORMATS, parameter="format")
    statuses = query.get("status") or Status.BANKED
    within = query_params.bbox_of(query.get("bbox"), CRS84)
    if query.get("geometry"):
        within = query_params.geometry_of(
            query["geometry"], CRS84, parameter="geometry"
        )
    selection = exports.Selection(
        statuses=tuple(
            Status.values
            if statuses == "all"
            else query_params.choices_of(statuses, Status.values, parameter="status")
        ),
        within=within,
        project=query.get("project") or None,
        land_class=query.get("land_class") or None,
        street=query.get("street") or None,
        banked_from=parse_day(query.get("banked_from"), name="banked_from"),
        banked_to=parse_day(query.get("banked_to"), name="banked_to"),
        as_of=parse_moment(query.get("as_of")),
    )
    name = "banked" if selection.banked_only else "parcels"
    with transaction.atomic():  # with its audit record (registry.audit)
        log = ExportLog.objects.create(
            user=request.user, format=fmt, selection=selection.as_dict(), channel="api"
        )
    if fmt == "geojson":
        manifest = exports.Manifest.begin(selection, fmt)

        def stream():
            yield from exports.geojson_stream(selection, manifest)
            ExportLog.objects.filter(pk=log.pk).update(
                features=manifest.features,
                total_area_m2=manifest.total_area_m2,
                sha256=manifest.sha256,
            )

        response = StreamingHttpResponse(stream(), content_type="application/geo+json")
        response["Content-Disposition"] = f'attachment; filename="{name}.geojson"'
        return response
    encoding = query.get("encoding", "UTF-8")
    with tempfile.TemporaryDirectory() as directory:
        manifest = exports.write_files(
            selection, Path(directory), fmt=fmt, encoding=encoding
        )
        data = exports.zip_directory(Path(directory))
    ExportLog.objects.filter(pk=log.pk).update(
        features=manifest.features,
        total_area_m2=manifest.total_area_m2,
        sha256=manifest.sha256,
    )
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}-{fmt}.zip"'
    return response
