"""OGC API – Features (Part 1 Core + GeoJSON, Part 2 CRS by reference).

Mounted at ``/ogcapi/``. Link relations, media types and the ``Content-Crs``
header follow OGC 17-069r4 and 18-058r1, so that GDAL's OAPIF driver, QGIS and
OWSLib read it with no special case. Every endpoint needs a logged-in user or an
API token (``Authorization: Token …``) and a role in the registry; errors are
OGC exception documents (``code``, ``description``) with the bilingual message.

Items are paged by keyset: the ``next`` link carries an opaque ``cursor``, never
an offset.
"""

import json
from urllib.parse import urlencode

from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from registry import access, query_params
from registry.errors import BadQuery, NotFound
from registry.ogcapi.collections import COLLECTIONS, Collection
from registry.token_auth import TokenWithRolesAuthentication
from spatial.api_crs import CRS84, STORAGE, SUPPORTED

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# Parameters every items request may carry, whatever the collection.
COMMON = ("bbox", "bbox-crs", "crs", "limit", "datetime", "cursor", "f")


class _JsonAlways(BaseContentNegotiation):
    """Answer in JSON whatever ``Accept`` says.

    Clients ask for ``application/geo+json``, ``application/schema+json`` or
    ``*/*``; the views write their own media types, and an error must reach
    the client as JSON rather than as a 406.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class OgcView(APIView):
    """Base of the OGC API views: token first (so 401 names it), reads only."""

    authentication_classes = [TokenWithRolesAuthentication, SessionAuthentication]
    content_negotiation_class = _JsonAlways
    http_method_names = ["get", "head", "options"]

    def initial(self, request, *args, **kwargs):
        """Refuse users without a role, and any ``f`` but JSON."""
        super().initial(request, *args, **kwargs)
        # Read once per request: the role check and the owners' data rule both
        # need them, and each read is a query.
        self.grants = access.grants_of(request.user)
        access.refuse_unless_reader(self.grants)
        fmt = request.query_params.get("f")
        if fmt not in (None, "", "json", "geojson"):
            raise BadQuery(
                gettext_lazy("%(parameter)s: only json is served, not %(value)s."),
                parameter="f",
                value=fmt[:20],
            )

    def link(self, name: str, *args, **query) -> str:
        """Return the absolute URL of the named route."""
        url = self.request.build_absolute_uri(reverse(name, args=args))
        if query:
            url += "?" + urlencode(query)
        return url


def _link(href: str, rel: str, media_type: str, title) -> dict:
    """Return one link object (OGC API – Features, 7.2 and RFC 8288)."""
    return {"href": href, "rel": rel, "type": media_type, "title": str(title)}


def _json(document: dict, *, content_type: str = JSON) -> HttpResponse:
    return HttpResponse(
        json.dumps(document, ensure_ascii=False), content_type=content_type
    )


def _collection_of(collection_id: str) -> Collection:
    collection = COLLECTIONS.get(collection_id)
    if collection is None:
        raise NotFound(
            gettext_lazy(
                "There is no collection %(id)s; the collections are %(known)s."
            ),
            id=collection_id[:40],
            known=", ".join(COLLECTIONS),
        )
    return collection


class LandingPage(OgcView):
    """The API's landing page: where everything else is."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_landing",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return the landing page."""
        return _json(
            {
                "title": _("Guangming land consolidation parcel registry"),
                "description": _(
                    "Parcels, buildings and consolidation projects of Guangming "
                    "district, Shenzhen."
                ),
                "links": [
                    _link(self.link("ogc-landing"), "self", JSON, "this document"),
                    _link(
                        self.link("api-schema-json"),
                        "service-desc",
                        OPENAPI,
                        "the API definition",
                    ),
                    _link(
                        self.link("api-docs"),
                        "service-doc",
                        "text/html",
                        "the API documentation",
                    ),
                    _link(
                        self.link("ogc-conformance"),
                        "conformance",
                        JSON,
                        "conformance classes",
                    ),
                    _link(self.link("ogc-collections"), "data", JSON, "collections"),
                ],
            }
        )


class Conformance(OgcView):
    """The conformance classes this API implements."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_conformance",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return the conformance declaration."""
        return _json({"conformsTo": CONFORMANCE})


class Collections(OgcView):
    """Every collection, with its extent and CRSs."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_collections",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return the collections."""
        return _json(
            {
                "links": [
                    _link(self.link("ogc-collections"), "self", JSON, "this document")
                ],
                "collections": [
                    describe(self, collection) for collection in COLLECTIONS.values()
                ],
                "crs": [crs.uri for crs in SUPPORTED],
            }
        )


def describe(view: OgcView, collection: Collection) -> dict:
    """Return the collection document of ``collection``."""
    bbox, interval = collection.extent()
    document = {
        "id": collection.id,
        "title": str(collection.title),
        "description": str(collection.description),
        "itemType": "feature",
        "crs": [crs.uri for crs in SUPPORTED],
        "storageCrs": STORAGE.uri,
        "extent": {
            "temporal": {
                "interval": [interval],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "links": [
            _link(
                view.link("ogc-collection", collection.id),
                "self",
                JSON,
                str(collection.title),
            ),
            _link(
                view.link("ogc-items", collection.id),
                "items",
                GEOJSON,
                str(collection.title),
            ),
        ],
    }
    if bbox is not None:
        document["extent"]["spatial"] = {"bbox": [bbox], "crs": CRS84.uri}
    return document


class CollectionView(OgcView):
    """One collection's description."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_collection",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, collection_id: str):
        """Return the collection document."""
        return _json(describe(self, _collection_of(collection_id)))


def _filter_parameters() -> list[OpenApiParameter]:
    names = sorted({name for c in COLLECTIONS.values() for name in c.filters})
    return [
        OpenApiParameter("bbox", str, description="minx,miny,maxx,maxy in bbox-crs"),
        OpenApiParameter("bbox-crs", str, description="CRS URI of bbox (CRS84)"),
        OpenApiParameter("crs", str, description="CRS URI of the output (CRS84)"),
        OpenApiParameter("limit", int, description=f"1…{MAX_LIMIT}"),
        OpenApiParameter("datetime", str, description="RFC 3339 instant or interval"),
        OpenApiParameter("cursor", str, description="from the next link"),
        *(OpenApiParameter(name, str, description="property filter") for name in names),
    ]


class Items(OgcView):
    """The features of a collection, filtered and paged by keyset."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_items",
        parameters=_filter_parameters(),
        responses={(200, GEOJSON): OpenApiTypes.OBJECT},
    )
    def get(self, request, collection_id: str):
        """Return one page of features as a GeoJSON FeatureCollection."""
        collection = _collection_of(collection_id)
        query = request.query_params
        unknown = sorted(set(query) - set(COMMON) - set(collection.filters))
        if unknown:
            raise BadQuery(
                gettext_lazy(
                    "%(parameter)s is not a parameter of %(collection)s; its "
                    "parameters are %(known)s."
                ),
                parameter=unknown[0][:40],
                collection=collection.id,
                known=", ".join([*COMMON, *collection.filters]),
            )
        crs = query_params.crs_of(query.get("crs"), parameter="crs")
        bbox_crs = query_params.crs_of(query.get("bbox-crs"), parameter="bbox-crs")
        bbox = query_params.bbox_of(query.get("bbox"), bbox_crs)
        start, end = query_params.interval_of(query.get("datetime"))
        limit = query_params.limit_of(
            query.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT
        )
        values = {
            name: reader(query[name])
            for name, reader in collection.filters.items()
            if query.get(name, "") != ""
        }
        rows = collection.queryset(values, intersecting=bbox, start=start, end=end)
        page = collection.page(
            rows,
            crs=crs,
            grants=self.grants,
            limit=limit,
            cursor=query.get("cursor") or None,
        )
        here = {k: query[k] for k in query if k != "cursor"}
        links = [
            _link(
                self.link("ogc-items", collection.id, **query.dict()),
                "self",
                GEOJSON,
                "this document",
            ),
            _link(
                self.link("ogc-collection", collection.id),
                "collection",
                JSON,
                str(collection.title),
            ),
        ]
        if page.next_cursor:
            links.append(
                _link(
                    self.link(
                        "ogc-items", collection.id, **here, cursor=page.next_cursor
                    ),
                    "next",
                    GEOJSON,
                    "next page",
                )
            )
        # The features are already JSON from PostGIS; only the envelope is
        # serialised here, so a page of 10,000 parcels is never parsed in Python.
        body = page.collection(
            {
                "numberReturned": page.returned,
                "timeStamp": timezone.now().isoformat(timespec="seconds"),
                "links": links,
            }
        )
        response = HttpResponse(body, content_type=GEOJSON)
        response["Content-Crs"] = f"<{crs.uri}>"
        return response


class Item(OgcView):
    """One feature."""

    @extend_schema(
        tags=["OGC API – Features"],
        operation_id="ogc_item",
        parameters=[OpenApiParameter("crs", str, description="CRS URI (CRS84)")],
        responses={(200, GEOJSON): OpenApiTypes.OBJECT},
    )
    def get(self, request, collection_id: str, feature_id: str):
        """Return one feature as GeoJSON."""
        collection = _collection_of(collection_id)
        unknown = sorted(set(request.query_params) - {"crs", "f"})
        if unknown:
            raise BadQuery(
                gettext_lazy("%(parameter)s is not a parameter of a feature."),
                parameter=unknown[0][:40],
            )
        crs = query_params.crs_of(request.query_params.get("crs"), parameter="crs")
        rows = collection.queryset({}).filter(pk=_feature_id(feature_id))
        page = collection.page(rows, crs=crs, grants=self.grants, limit=1)
        if not page.returned:
            raise NotFound(
                gettext_lazy("%(collection)s has no feature %(id)s."),
                collection=collection.id,
                id=feature_id[:40],
            )
        feature = json.loads(page.features)
        feature["links"] = [
            _link(
                self.link("ogc-item", collection.id, feature_id),
                "self",
                GEOJSON,
                "this document",
            ),
            _link(
                self.link("ogc-collection", collection.id),
                "collection",
                JSON,
                str(collection.title),
            ),
        ]
        response = _json(feature, content_type=GEOJSON)
        response["Content-Crs"] = f"<{crs.uri}>"
        return response


def _feature_id(text: str) -> int:
    # isascii: "²".isdigit() is true, and int() cannot read it.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound(
            gettext_lazy("There is no feature %(id)s; feature ids are numbers."),
            id=text[:40],
        )
    return int(text)
