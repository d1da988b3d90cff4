"""REST endpoints of parcels: listing by map and attribute, search, detail, moves.

Listings are GeoJSON FeatureCollections written by PostGIS
(``registry.feature_pages``) and paged by keyset; the filters are the
selectors' (``registry.selectors.parcel_list``), read by
``registry.query_params``.
"""

import json

from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import access, feature_pages, query_params, selectors, services
from registry.choices import LandClass, Street
from registry.errors import BadQuery, NotFound
from registry.models import Parcel
from registry.moments import parse_day
from registry.rest.common import (
    HoldsARole,
    feature_collection,
    limit_of,
    next_url,
    ordering_of,
    refuse_unknown,
)
from registry.workflow import CLEARED_STATUSES, TRANSITIONS, Status
from spatial.api_crs import ApiCrs

FILTERS = (
    "project",
    "land_class",
    "status",
    "street",
    "code",
    "code_prefix",
    "cleared",
    "updated_since",
)
PAGING = ("limit", "cursor", "ordering", "crs")
LIST_PARAMETERS = (*FILTERS, "bbox", "bbox-crs", "point", *PAGING)
MAX_BULK = 5000


def parcel_filters(values, *, crs=None) -> dict:
    """Return ``parcel_list`` arguments from query parameters or a JSON body."""

    def text(name):
        value = values.get(name)
        return None if value in (None, "") else str(value)

    return {
        "project": text("project"),
        "land_class": query_params.choices_of(
            text("land_class"), LandClass.values, parameter="land_class"
        ),
        "status": query_params.choices_of(
            text("status"), Status.values, parameter="status"
        ),
        "street": query_params.choices_of(
            text("street"), Street.values, parameter="street"
        ),
        "code": text("code"),
        "code_prefix": text("code_prefix"),
        "cleared": query_params.boolean_of(text("cleared"), parameter="cleared"),
        "updated_from": query_params.interval_of(
            text("updated_since"), parameter="updated_since"
        )[0],
    }


def _list_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("project", str, description="project code"),
        OpenApiParameter("land_class", str, description="one or more, comma-separated"),
        OpenApiParameter("status", str, description="one or more, comma-separated"),
        OpenApiParameter("street", str, description="one or more, comma-separated"),
        OpenApiParameter("code", str, description="exact parcel code"),
        OpenApiParameter("code_prefix", str, description="parcel codes starting so"),
        OpenApiParameter("cleared", bool),
        OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
        OpenApiParameter("bbox", str, description="minx,miny,maxx,maxy in bbox-crs"),
        OpenApiParameter("bbox-crs", str, description="CRS URI (default CRS84)"),
        OpenApiParameter("point", str, description="x,y in bbox-crs"),
        OpenApiParameter("crs", str, description="output CRS URI (default CRS84)"),
        OpenApiParameter("ordering", str, description="code, area_m2, updated_at, -…"),
        OpenApiParameter("limit", int, description="1…1000, default 100"),
        OpenApiParameter("cursor", str, description="from next / next_cursor"),
    ]


def _page(queryset, values) -> tuple[feature_pages.Page, ApiCrs]:
    crs = query_params.crs_of(values.get("crs"), parameter="crs")
    page = feature_pages.page_of(
        queryset,
        feature_sql=feature_pages.parcel_feature_sql(crs),
        source=feature_pages.PARCEL_FROM,
        ordering=ordering_of(values.get("ordering")),
        limit=limit_of(values.get("limit")),
        cursor=values.get("cursor") or None,
    )
    return page, crs


class ParcelList(APIView):
    """Parcels by attribute and by map, as GeoJSON, paged by keyset."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["parcels"],
        operation_id="parcels_list",
        parameters=_list_parameters(),
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return one page of parcels matching every filter."""
        query = request.query_params
        refuse_unknown(query, LIST_PARAMETERS)
        area_crs = query_params.crs_of(query.get("bbox-crs"), parameter="bbox-crs")
        bbox = query_params.bbox_of(query.get("bbox"), area_crs)
        point = query_params.point_of(query.get("point"), area_crs)
        if bbox is not None and point is not None:
            raise BadQuery(
                _("%(parameter)s: give a bbox or a point, not both."),
                parameter="point",
            )
        rows = selectors.parcel_list(
            **parcel_filters(query), intersecting=bbox or point
        )
        page, crs = _page(rows, query)
        return feature_collection(
            page, next_url=next_url(request, page.next_cursor), crs_uri=crs.uri
        )


class ParcelSearch(APIView):
    """Parcels hit by a drawn geometry (a POST body can hold a long polygon)."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["parcels"],
        request=inline_serializer(
            "ParcelSearch",
            {
                "intersects": serializers.JSONField(help_text="GeoJSON geometry"),
                "geometry_crs": serializers.CharField(required=False),
                **{name: serializers.CharField(required=False) for name in FILTERS},
                **{name: serializers.CharField(required=False) for name in PAGING},
            },
        ),
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
    )
    def post(self, request):
        """Return one page of the parcels the geometry intersects, and their area."""
        body = request.data if isinstance(request.data, dict) else {}
        refuse_unknown(body, ("intersects", "geometry_crs", *FILTERS, *PAGING))
        if "intersects" not in body:
            raise BadQuery(
                _("%(parameter)s is missing: a GeoJSON geometry to search with."),
                parameter="intersects",
            )
        geometry_crs = query_params.crs_of(
            query_params.body_text(body, skip=("intersects",)).get("geometry_crs"),
            parameter="geometry_crs",
        )
        shape = query_params.geometry_of(body["intersects"], geometry_crs)
        fields = query_params.body_text(body, skip=("intersects",))
        rows = selectors.parcel_list(**parcel_filters(fields), intersecting=shape)
        page, crs = _page(rows, fields)
        return feature_collection(page, next_url=None, crs_uri=crs.uri)


def _detail(parcel: Parcel, user) -> dict:
    grants = access.grants_of(user)
    owners = access.can_view_owner_data(grants, parcel.project_id)
    geometry = (
        Parcel.objects.filter(pk=parcel.pk)
        .annotate(
            geojson=AsGeoJSON(Transform("geom", 4326), precision=7),
        )
        .values_list("geojson", flat=True)
        .get()
    )
    project = parcel.project
    return {
        "id": parcel.pk,
        "code": parcel.code,
        "project": (
            {"code": project.code, "name": project.name_zh, "name_en": project.name_en}
            if project
            else None
        ),
        "land_class": parcel.land_class,
        "land_class_name": str(parcel.get_land_class_display()),
        "status": parcel.status,
        "status_name": str(parcel.get_status_display()),
        "cleared": parcel.status in CLEARED_STATUSES,
        "street": parcel.street or None,
        "area_m2": round(parcel.area_m2, 2),
        "declared_area_m2": parcel.declared_area_m2,
        "banked_on": parcel.banked_on.isoformat() if parcel.banked_on else None,
        "bank_ref": parcel.bank_ref or None,
        "created_at": parcel.created_at.isoformat(),
        "updated_at": parcel.updated_at.isoformat(),
        "geometry": json.loads(geometry),
        "buildings": [
            {
                "id": b.pk,
                "code": b.code,
                "floors": b.floors,
                "floor_area_m2": b.floor_area_m2,
                "legality": b.legality,
                "status": b.status,
                "status_name": str(b.get_status_display()),
                "owner_group": b.owner_group if owners else None,
            }
            for b in parcel.buildings.all()
        ],
        "history": [
            {
                "at": h.at.isoformat(),
                "move": h.move,
                "from_status": h.from_status or None,
                "to_status": h.to_status,
                "actor": h.actor.get_username(),
                "reason": h.reason,
                "evidence_ref": h.evidence_ref,
                "banked_on": h.banked_on.isoformat() if h.banked_on else None,
                "bank_ref": h.bank_ref or None,
            }
            for h in parcel.history.all()
        ],
        "moves": [
            {
                "to_status": target.value,
                "move": move.value,
                "allowed": access.can_change_status(
                    grants, parcel.project_id, parcel.status, target
                ),
            }
            for target, move in TRANSITIONS[Status(parcel.status)].items()
        ],
    }


def _parcel(pk) -> Parcel:
    try:
        return selectors.parcel_detail(pk=int(pk))
    except (Parcel.DoesNotExist, ValueError) as error:
        raise NotFound(_("There is no parcel %(id)s."), id=str(pk)[:20]) from error


class ParcelDetail(APIView):
    """One parcel with its buildings, its history and the moves open to it."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["parcels"],
        operation_id="parcel_detail",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk: int):
        """Return the parcel."""
        refuse_unknown(request.query_params, ())
        return Response(_detail(_parcel(pk), request.user))


TRANSITION_FIELDS = ("to_status", "reason", "evidence_ref", "banked_on", "bank_ref")


def _transition_arguments(body) -> dict:
    if not isinstance(body, dict):
        raise BadQuery(_("The request body must be a JSON object."), parameter="body")
    texts = query_params.body_text(body, skip=("parcels",))
    to_status = texts.get("to_status")
    if to_status not in Status.values:
        raise BadQuery(
            _("%(parameter)s must be one of %(known)s."),
            parameter="to_status",
            known=", ".join(Status.values),
        )
    arguments = {"to_status": to_status}
    for name, longest in (("reason", 2000), ("evidence_ref", 200), ("bank_ref", 40)):
        value = texts.get(name, "")
        if not isinstance(value, str) or len(value) > longest:
            raise BadQuery(
                _("%(parameter)s must be text of at most %(longest)s characters."),
                parameter=name,
                longest=longest,
            )
        arguments[name] = value
    arguments["banked_on"] = parse_day(texts.get("banked_on"), name="banked_on")
    return arguments


def _transition_schema(*extra):
    return inline_serializer(
        "ParcelTransition" + ("Bulk" if extra else ""),
        {
            **dict(extra),
            "to_status": serializers.ChoiceField(Status.choices),
            "reason": serializers.CharField(required=False),
            "evidence_ref": serializers.CharField(required=False),
            "banked_on": serializers.DateField(required=False),
            "bank_ref": serializers.CharField(required=False),
        },
    )


def _change(change) -> dict:
    return {
        "parcel": change.parcel_id,
        "move": change.move,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "at": change.at.isoformat(),
    }


class ParcelTransition(APIView):
    """Move one parcel through the workflow (case officers and admins)."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["workflow"],
        operation_id="parcel_transition",
        request=_transition_schema(),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """Apply the move with ``registry.services.parcel_transition``."""
        body = request.data
        refuse_unknown(body if isinstance(body, dict) else {}, TRANSITION_FIELDS)
        arguments = _transition_arguments(body)
        parcel = _parcel(pk)
        change = services.parcel_transition(
            parcel=parcel, actor=request.user, **arguments
        )
        return Response({"change": _change(change), "status": parcel.status})


class ParcelTransitionBulk(APIView):
    """Move many parcels at once: all of them, or none (with every refusal)."""

    permission_classes = [HoldsARole]

    @extend_schema(
        tags=["workflow"],
        operation_id="parcel_transition_bulk",
        request=_transition_schema(
            (
                "parcels",
                serializers.ListField(
                    child=serializers.JSONField(),
                    help_text="parcel ids (numbers) or codes (strings)",
                ),
            )
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        """Apply the move with ``registry.services.parcel_transition_bulk``."""
        body = request.data
        refuse_unknown(
            body if isinstance(body, dict) else {}, ("parcels", *TRANSITION_FIELDS)
        )
        arguments = _transition_arguments(body)
        wanted = body.get("parcels")
        if (
            not isinstance(wanted, list)
            or not wanted
            or len(wanted) > MAX_BULK
            # bool is an int in Python; a JSON true is no parcel id.
            or not all(
                (isinstance(v, int) and not isinstance(v, bool))
                or (isinstance(v, str) and "\x00" not in v)
                for v in wanted
            )
        ):
            raise BadQuery(
                _("%(parameter)s must list 1 to %(limit)s parcel ids or codes."),
                parameter="parcels",
                limit=MAX_BULK,
            )
        ids = _resolve(wanted)
        changes = services.parcel_transition_bulk(
            parcels=ids, actor=request.user, **arguments
        )
        return Response({"changed": len(changes), "to_status": arguments["to_status"]})


def _resolve(wanted: list) -> list[int]:
    """Return the ids of the parcels named: JSON numbers are ids, strings codes."""
    numbers = {v for v in wanted if isinstance(v, int)}
    codes = {v for v in wanted if isinstance(v, str)}
    found = list(
        Parcel.objects.filter(Q(pk__in=numbers) | Q(code__in=codes)).values_list(
            "pk", "code"
        )
    )
    known = {pk for pk, _code in found} | {code for _pk, code in found}
    missing = sorted(str(v) for v in wanted if v not in known)
    if missing:
        raise NotFound(
            _("There is no parcel %(id)s."),
            id=", ".join(missing[:20]) + ("…" if len(missing) > 20 else ""),
        )
    return sorted({pk for pk, _code in found})
