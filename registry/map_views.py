"""The planners' map: every project of the district, and one project's parcels.

The pages are thin. What they draw comes from the services that already answer
everybody else: parcels and buildings from the vector tiles (``tilesvc``), the
figures from ``registry.selectors`` (the very summary ``/api/projects/`` serves),
and what a click or a drawn shape hits from the REST API (``/api/parcels/?point=``
and ``/api/parcels/search/``). ``registry/static/registry/map.js`` draws them
with Leaflet, from the vendored static files only.

The pages are Django templates rather than folium maps: folium writes pages that
load Leaflet and its plugins from CDNs, which an intranet does not reach, and it
cannot share the site's login, language switcher and layout. Leaflet rather than
MapLibre GL: MapLibre needs WebGL, which a headless or remote-desktop browser
often lacks; Leaflet.VectorGrid draws the MVT tiles on plain 2D canvases.
"""

import json
from functools import cache
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from registry import access, selectors
from registry.choices import LandClass
from registry.selectors import AreaSummary
from registry.templatetags.humanize_area import percent
from registry.workflow import ORDER, Status
from spatial.crs import WGS84_SRID
from tilesvc import imagery
from tilesvc.vector import BUILDINGS, PARCELS

# Two colours no one confuses: they differ in hue and in lightness, so they stay
# apart for the red-green colour-blind and on a grey printout too.
CLEARED_COLOURS = {"cleared": "#2e7d32", "uncleared": "#e65100"}
# The dashboard's colours for the workflow stages (registry/static/registry/
# dashboard.js), so that a stage looks the same on the chart and on the map.
STATUS_COLOURS = {
    Status.SURVEYED: "#c7ced8",
    Status.DECLARED: "#9fb3c8",
    Status.VERIFIED: "#6d8fb3",
    Status.SIGNED: "#e0a84f",
    Status.CLEARED: "#4f9d69",
    Status.BANKED: "#1f6b3a",
}
LAND_CLASS_COLOURS = {
    LandClass.COLLECTIVE: "#ad1457",
    LandClass.STATE_FARM: "#1565c0",
    LandClass.UNFINISHED_EXPROPRIATION: "#f9a825",
}
BUILDING_COLOUR = "#455a64"
# Parcels are filled at this opacity over the ground colour of map.css, so that
# a base map, where there is one, still shows through.
FILL_OPACITY = 0.75
GROUND_COLOUR = "#f4f2ec"

EMPTY = AreaSummary(0, 0.0, 0.0, 0.0, 0.0)
# One search lists at most this many parcels (pages of the API's largest size).
SEARCH_PAGE = 1000
SEARCH_MAX = 10_000


def _readable(user) -> None:
    if not access.can_read_registry(user):
        raise PermissionDenied


def _boundaries(projects) -> dict[str, dict]:
    """Return each project's boundary as RFC 7946 GeoJSON, by project code."""
    rows = projects.annotate(
        geojson=AsGeoJSON(Transform("boundary", WGS84_SRID), precision=6)
    ).values_list("code", "geojson")
    return {code: json.loads(geojson) for code, geojson in rows}


@cache
def _outline(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def district_outline() -> dict:
    """Return the district's outline (WGS84 GeoJSON), drawn for orientation.

    It is the outline imports are checked against (``IMPORT_SERVICE_AREA``, by
    default ``fixtures/guangming_outline.geojson``): with no base map it is what
    tells a reader where in Guangming a project lies.
    """
    return _outline(Path(settings.IMPORT_SERVICE_AREA))


def basemap() -> list[dict]:
    """Return the base maps to offer, first the one shown; none by default.

    Each is a name and its tile layers (Leaflet ``L.tileLayer`` URL templates and
    options). ``settings.MAP_BASEMAP`` says which (see the settings); a base map
    asked for but not configured is refused here rather than drawn blank.
    """
    kind = settings.MAP_BASEMAP
    if kind == "none":
        return []
    if kind == "osm":
        if not settings.MAP_OSM_URL:
            raise ImproperlyConfigured("MAP_BASEMAP=osm needs MAP_OSM_URL.")
        layer = {
            "url": settings.MAP_OSM_URL,
            "options": {
                "attribution": settings.MAP_OSM_ATTRIBUTION,
                "maxNativeZoom": 19,
            },
        }
        return [{"name": _("Street map"), "layers": [layer]}]
    if kind == "tianditu":
        if not settings.TIANDITU_KEY:
            raise ImproperlyConfigured("MAP_BASEMAP=tianditu needs TIANDITU_KEY.")

        def tianditu(layer: str) -> dict:
            return {
                "url": settings.MAP_TIANDITU_URL,
                "options": {
                    "layer": layer,
                    "tk": settings.TIANDITU_KEY,
                    "subdomains": "01234567",
                    "maxNativeZoom": 18,
                    "attribution": "© 天地图 (www.tianditu.gov.cn)",
                },
            }

        return [
            {"name": _("Tianditu map"), "layers": [tianditu("vec"), tianditu("cva")]},
            {
                "name": _("Tianditu imagery"),
                "layers": [tianditu("img"), tianditu("cia")],
            },
        ]
    raise ImproperlyConfigured(
        f"MAP_BASEMAP must be none, osm or tianditu, not {kind!r}."
    )


def _common() -> dict:
    """Return what both map pages give their script."""
    return {
        "language": get_language(),
        "basemaps": basemap(),
        "outline": district_outline(),
        "ground": GROUND_COLOUR,
        "messages": {
            "noBasemap": _("No base map"),
            "districtOutline": _("Guangming district"),
        },
    }


@require_safe
def district(request):
    """Show every project outlined and labelled with its cleared share."""
    _readable(request.user)
    overview = selectors.project_overview()
    boundaries = _boundaries(selectors.project_list())
    projects = [
        {
            "code": project.code,
            "cleared_share": total.cleared_share,
            "label": f"{project.code} {percent(total.cleared_share)}",
            "url": reverse("map-project", args=[project.code]),
            "boundary": boundaries.get(project.code),
        }
        for project, total, _by_class in overview
    ]
    config = {**_common(), "projects": projects}
    return render(
        request,
        "registry/map_district.html",
        {"overview": overview, "config": config},
    )


def _legends() -> dict[str, list[dict]]:
    """Return the legend of each way of colouring parcels: value, label, colour."""
    return {
        "cleared": [
            {
                "value": "cleared",
                "label": _("Cleared"),
                "colour": CLEARED_COLOURS["cleared"],
            },
            {
                "value": "uncleared",
                "label": _("Not cleared"),
                "colour": CLEARED_COLOURS["uncleared"],
            },
        ],
        "status": [
            {"value": s.value, "label": str(s.label), "colour": STATUS_COLOURS[s]}
            for s in ORDER
        ],
        "land_class": [
            {"value": c.value, "label": str(c.label), "colour": LAND_CLASS_COLOURS[c]}
            for c in LandClass
        ],
    }


def _totals_row(key: str, label, summary: AreaSummary) -> dict:
    """Return one row of the totals panel: areas in whole m², as the API's."""
    return {
        "key": key,
        "label": label,
        "parcels": summary.parcels,
        "figures": [
            {"name": name, "m2": round(value, 2), "text": f"{value:,.0f}"}
            for name, value in (
                ("cleared", summary.cleared_m2),
                ("uncleared", summary.uncleared_m2),
                ("banked", summary.banked_m2),
                ("area", summary.area_m2),
            )
        ],
        "share": percent(summary.cleared_share),
    }


def _tiles(layer: str, code: str) -> str:
    """Return the tile URL template of ``layer`` filtered to one project."""
    url = reverse("tile", args=[layer, 0, 0, 0]).replace("/0/0/0.mvt", "")
    return f"{url}/{{z}}/{{x}}/{{y}}.mvt?project={quote(code, safe='')}"


def _js_messages() -> dict[str, str]:
    """Return the script's own words, translated (placeholders in %(name)s)."""
    return {
        "searching": _("Searching…"),
        "nothingHit": _("No parcel of this project there."),
        "hitSummary": _("%(count)s parcels, %(area)s m² in all"),
        "truncated": _("Only the first %(count)s parcels are listed."),
        "failed": _("The search failed: %(reason)s"),
        "code": _("code"),
        "landClass": _("land class"),
        "status": _("status"),
        "area": _("area (m²)"),
        "buildings": _("Buildings"),
        "noBuildings": _("No buildings recorded on this parcel."),
        "floors": _("%(count)s floors"),
        "history": _("History of this parcel"),
        "zoomIn": _("Zoom in to see the parcels."),
        "drawRectangle": _("Draw a rectangle to list the parcels it touches"),
        "drawPolygon": _("Draw a polygon to list the parcels it touches"),
        "rectangleStart": _("Press and drag to draw a rectangle."),
        "shapeEnd": _("Release the mouse to finish."),
        "polygonStart": _("Click to start the polygon."),
        "polygonContinue": _("Click to add a corner."),
        "polygonEnd": _("Click the first corner to close the polygon."),
        "cancel": _("Cancel"),
        "cancelTitle": _("Stop drawing"),
        "finish": _("Finish"),
        "finishTitle": _("Close the polygon"),
        "undo": _("Delete the last corner"),
        "undoTitle": _("Delete the last corner drawn"),
        "edgesCross": _("The edges of a shape cannot cross."),
    }


def _orthophotos(project) -> list[dict]:
    """Return the project's orthophotos as raster tile layers for the map."""
    layers = []
    for orthophoto in imagery.orthophoto_list(project=project):
        facts = imagery.orthophoto_tileset(orthophoto)
        west, south, east, north = facts.bounds
        template = reverse("imagery:tile-png", args=[orthophoto.pk, 0, 0, 0])
        layers.append(
            {
                "title": orthophoto.title,
                "url": template.replace("/0/0/0.png", "/{z}/{x}/{y}.png"),
                "bounds": [[south, west], [north, east]],
                "minNativeZoom": facts.minzoom,
                "maxNativeZoom": facts.maxzoom,
            }
        )
    return layers


@require_safe
def project(request, code: str):
    """Show one project's parcels coloured by progress, its figures and queries."""
    _readable(request.user)
    projects = selectors.project_list(code=code)
    found = projects.first()
    if found is None:
        raise Http404(_("There is no project %(code)s.") % {"code": code[:40]})
    by_class = selectors.project_area_summary(projects=projects).get(found.pk, {})
    totals = [
        _totals_row(c.value, c.label, by_class.get(c.value, EMPTY)) for c in LandClass
    ]
    totals.append(_totals_row("all", _("All land"), by_class.get(None, EMPTY)))
    legends = _legends()
    admin = access.is_registry_admin(request.user)
    can_export = access.can_export(request.user)
    english = request.LANGUAGE_CODE == "en"
    common = _common()
    config = {
        **common,
        "project": {
            "code": found.code,
            "name": found.name_en if english else found.name_zh,
            "boundary": _boundaries(projects).get(found.code),
        },
        # The project's survey orthophotos, offered under the parcels.
        "imagery": _orthophotos(found),
        "tiles": {
            "parcels": _tiles("parcels", found.code),
            "buildings": _tiles("buildings", found.code),
            "parcelsMinZoom": PARCELS.minzoom,
            "buildingsMinZoom": BUILDINGS.minzoom,
            "maxNativeZoom": min(PARCELS.maxzoom, BUILDINGS.maxzoom),
        },
        "api": {
            "parcels": reverse("api-parcels"),
            "search": reverse("api-parcel-search"),
            "parcel": reverse("api-parcel", args=[0]),
            # The admin's change page shows the whole history; others read it
            # from the API's parcel detail.
            "history": (
                reverse("admin:registry_parcel_change", args=[0])
                if admin
                else reverse("api-parcel", args=[0])
            ),
            "pageSize": SEARCH_PAGE,
            "maxParcels": SEARCH_MAX,
            # Exports are for analysts and admins, and every one is logged:
            # the selection goes to the export API, never out of the page.
            "export": reverse("api-export-banked") if can_export else None,
        },
        # The search is a POST under session authentication; the CSRF cookie is
        # HttpOnly, so the script gets the token from the page.
        "csrfToken": get_token(request),
        "legends": legends,
        "labels": {
            "status": {item["value"]: item["label"] for item in legends["status"]},
            "land_class": {
                item["value"]: item["label"] for item in legends["land_class"]
            },
        },
        "style": {
            "fillOpacity": FILL_OPACITY,
            "outline": "#37474f",
            "building": BUILDING_COLOUR,
        },
        "messages": {**common["messages"], **_js_messages()},
    }
    return render(
        request,
        "registry/map_project.html",
        {
            "project": found,
            "project_name": config["project"]["name"],
            "totals": totals,
            "legends": legends,
            "building_colour": BUILDING_COLOUR,
            "building_zoom": BUILDINGS.minzoom,
            "can_export": can_export,
            "config": config,
        },
    )
