"""REST endpoint of buildings: listing by map and attribute, as GeoJSON.

Owners' group (personal data) is filled only where the user may see it
(``registry.access.can_view_owner_data``).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from registry import access, feature_pages, query_params, selectors
from registry.choices import BuildingStatus, Legality
from registry.rest.common import (
    HoldsARole,
    feature_collection,
    limit_of,
    next_url,
    ordering_of,
    refuse_unknown,
)

PARAMETERS = (
    "project",
    "parcel",
    "status",
    "legality",
    "code",
    "code_prefix",
    "updated_since",
    "bbox",
    "bbox-crs",
    "point",
    "limit",
    "cursor",
    "ordering",
    "crs",
)
ORDERINGS = ("code", "-code", "updated_at", "-updated_at")


class BuildingList(APIView):
    """Buildings filtered like parcels, as GeoJSON, paged by keyset."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["buildings"],
        parameters=[
            OpenApiParameter("project", str, description="project code"),
            OpenApiParameter("parcel", str, description="parcel code"),
            OpenApiParameter("status", str, description="one or more"),
            OpenApiParameter("legality", str, description="one or more"),
            OpenApiParameter("code", str),
            OpenApiParameter("code_prefix", str),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
            OpenApiParameter("bbox", str),
            OpenApiParameter("bbox-crs", str),
            OpenApiParameter("point", str, description="x,y in bbox-crs"),
            OpenApiParameter("crs", str),
            OpenApiParameter("ordering", str, description="code, updated_at, -…"),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return one page of buildings matching every filter."""
        query = request.query_params
        refuse_unknown(query, PARAMETERS)
        area_crs = query_params.crs_of(query.get("bbox-crs"), parameter="bbox-crs")
        crs = query_params.crs_of(query.get("crs"), parameter="crs")
        ordering = ordering_of(query.get("ordering"), allowed=ORDERINGS)
        rows = selectors.building_list(
            project=query.get("project") or None,
            parcel=query.get("parcel") or None,
            status=query_params.choices_of(
                query.get("status"), BuildingStatus.values, parameter="status"
            ),
            legality=query_params.choices_of(
                query.get("legality"), Legality.values, parameter="legality"
            ),
            code=query.get("code") or None,
            code_prefix=query.get("code_prefix") or None,
            intersecting=query_params.bbox_of(query.get("bbox"), area_crs)
            or query_params.point_of(query.get("point"), area_crs),
            updated_from=query_params.interval_of(
                query.get("updated_since"), parameter="updated_since"
            )[0],
        )
        owners = access.owner_data_projects(request.user)
        page = feature_pages.page_of(
            rows,
            feature_sql=feature_pages.building_feature_sql(crs, owners=owners),
            source=feature_pages.BUILDING_FROM,
            ordering=ordering,
            limit=limit_of(query.get("limit")),
            cursor=query.get("cursor") or None,
        )
        return feature_collection(
            page, next_url=next_url(request, page.next_cursor), crs_uri=crs.uri
        )
