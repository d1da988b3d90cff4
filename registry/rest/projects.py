"""REST endpoints of projects: list and detail with cleared/uncleared/banked area.

The figures come from ``registry.selectors.project_area_summary``, the one
definition of cleared, uncleared and banked land that the pages, the dashboard,
the OGC API and the map use as well.
"""

import json

from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.utils.translation import gettext_lazy as _
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.choices import LandClass
from registry.errors import NotFound
from registry.models import Project
from registry.rest.common import HoldsARole, refuse_unknown


def _figures(summary) -> dict:
    if summary is None:
        return {
            "parcels": 0,
            "area_m2": 0.0,
            "cleared_m2": 0.0,
            "uncleared_m2": 0.0,
            "banked_m2": 0.0,
        }
    return {
        "parcels": summary.parcels,
        "area_m2": round(summary.area_m2, 2),
        "cleared_m2": round(summary.cleared_m2, 2),
        "uncleared_m2": round(summary.uncleared_m2, 2),
        "banked_m2": round(summary.banked_m2, 2),
    }


def _project(project: Project, by_class: dict) -> dict:
    return {
        "id": project.pk,
        "code": project.code,
        "name": project.name_zh,
        "name_en": project.name_en,
        "kind": project.kind,
        "street": project.street,
        "planned_area_m2": project.planned_area_m2,
        "start_date": project.start_date.isoformat() if project.start_date else None,
        "target_date": project.target_date.isoformat() if project.target_date else None,
        "synthetic": project.synthetic,
        "totals": _figures(by_class.get(None)),
        "by_land_class": {lc: _figures(by_class.get(lc)) for lc in LandClass.values},
    }


class ProjectList(APIView):
    """Every project with its area figures by land class."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["projects"],
        operation_id="projects_list",
        responses={200: build_array_type(build_basic_type(OpenApiTypes.OBJECT))},
    )
    def get(self, request):
        """Return the projects, ordered by code."""
        refuse_unknown(request.query_params, ())
        summary = selectors.project_area_summary()
        return Response(
            [
                _project(project, summary.get(project.pk, {}))
                for project in selectors.project_list()
            ]
        )


class ProjectDetail(APIView):
    """One project with its boundary and its area figures by land class."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["projects"],
        operation_id="project_detail",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, code: str):
        """Return the project."""
        refuse_unknown(request.query_params, ())
        projects = selectors.project_list(code=code)
        project = projects.annotate(
            boundary_geojson=AsGeoJSON(Transform("boundary", 4326), precision=7)
        ).first()
        if project is None:
            raise NotFound(_("There is no project %(code)s."), code=code[:40])
        summary = selectors.project_area_summary(projects=projects)
        return Response(
            {
                **_project(project, summary.get(project.pk, {})),
                "boundary": json.loads(project.boundary_geojson),
            }
        )
