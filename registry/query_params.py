"""Reading the query APIs' parameters into selector filters, or refusing them.

REST and OGC API – Features take the same kinds of values (a bbox in a named CRS,
a point, a drawn geometry, a datetime interval, a page size, coded values); each
is read here once, and anything unreadable is a ``BadQuery`` that names the
parameter and says what was wrong, in Chinese and English.
"""

import json
import math
import re
from collections.abc import Collection
from datetime import datetime

import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.utils.translation import gettext_lazy as _

from registry.errors import BadQuery, RegistryError
from registry.moments import parse_moment
from spatial import api_crs
from spatial.api_crs import CRS84, ApiCrs
from spatial.crs import STORAGE_SRID

# A drawn query geometry: enough for a careful hand-drawn polygon or a project
# outline, small enough that one request cannot pin a database core.
MAX_VERTICES = 10_000
MAX_AREA_KM2 = 300.0  # twice the district
DIGITS = re.compile(r"[0-9]{1,9}")
# A collection of drawn shapes is fine; collections inside it are no drawing.
MAX_COLLECTION_DEPTH = 1


def body_text(body: dict, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Return a JSON body's scalar members as the text a query string would carry.

    Numbers and booleans become their text (``"limit": 50`` reads as ``50``);
    lists, objects and text holding NUL are refused, naming the member.
    """
    texts = {}
    for name, value in body.items():
        if name in skip or value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = repr(value)
        if not isinstance(value, str) or "\x00" in value:
            raise BadQuery(
                _("%(parameter)s must be a single value (text or a number)."),
                parameter=str(name)[:40],
            )
        texts[name] = value
    return texts


def crs_of(text: str | None, *, parameter: str) -> ApiCrs:
    """Return the CRS a parameter names (CRS84 when absent)."""
    if not text:
        return CRS84
    crs = api_crs.lookup(text)
    if crs is None:
        supported = ", ".join(c.uri for c in api_crs.SUPPORTED)
        raise BadQuery(
            _(
                "%(parameter)s: unknown or unsupported CRS %(value)s; "
                "use one of %(supported)s."
            ),
            parameter=parameter,
            value=text[:120],
            supported=supported,
        )
    return crs


def bbox_of(
    text: str | None, crs: ApiCrs, *, parameter: str = "bbox"
) -> GEOSGeometry | None:
    """Return the bbox ``minx,miny,maxx,maxy`` (in ``crs`` axis order) in storage.

    Six numbers (with heights) are accepted and the heights ignored, as OGC API
    allows. A bbox wholly outside the storage CRS's area of use returns an
    empty geometry: a valid query that matches nothing.
    """
    if text is None:
        return None
    numbers = _numbers(text, parameter=parameter, counts=(4, 6))
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    x0, y0, x1, y1 = numbers
    if x0 > x1 or y0 > y1:
        raise BadQuery(
            _(
                "%(parameter)s: the lower corner %(low)s is above or right of "
                "the upper corner %(high)s."
            ),
            parameter=parameter,
            low=f"{x0},{y0}",
            high=f"{x1},{y1}",
        )
    _latitudes_plausible((x0, y0), (x1, y1), crs=crs, parameter=parameter)
    return _geos(api_crs.rectangle((x0, y0, x1, y1), crs))


def point_of(
    text: str | None, crs: ApiCrs, *, parameter: str = "point"
) -> GEOSGeometry | None:
    """Return the point ``x,y`` (in ``crs`` axis order) in storage coordinates."""
    if text is None:
        return None
    x, y = _numbers(text, parameter=parameter, counts=(2,))
    _latitudes_plausible((x, y), crs=crs, parameter=parameter)
    return _geos(api_crs.rectangle((x, y, x, y), crs))


def geometry_of(value, crs: ApiCrs, *, parameter: str = "intersects") -> GEOSGeometry:
    """Return a GeoJSON geometry (object or text) in ``crs`` as a storage geometry.

    Refused when it is not GeoJSON, nests geometry collections, has no area or
    line or point to speak of, is invalid, has more than ``MAX_VERTICES``
    vertices or covers more than ``MAX_AREA_KM2``.
    """
    try:
        if isinstance(value, str):
            value = json.loads(value)
        depth = _collection_depth(value)
        if depth > MAX_COLLECTION_DEPTH:
            raise BadQuery(
                _(
                    "%(parameter)s nests geometry collections %(depth)s deep; at "
                    "most %(limit)s is accepted."
                ),
                parameter=parameter,
                depth=depth,
                limit=MAX_COLLECTION_DEPTH,
            )
        geometry = shapely.geometry.shape(value)
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
        shapely.errors.GEOSException,
    ) as error:
        raise BadQuery(
            _("%(parameter)s is not a GeoJSON geometry: %(detail)s"),
            parameter=parameter,
            detail=str(error)[:200],
        ) from error
    vertices = shapely.get_num_coordinates(geometry)
    if geometry.is_empty or vertices == 0:
        raise BadQuery(_("%(parameter)s is an empty geometry."), parameter=parameter)
    if vertices > MAX_VERTICES:
        raise BadQuery(
            _("%(parameter)s has %(count)s vertices; at most %(limit)s are accepted."),
            parameter=parameter,
            count=vertices,
            limit=MAX_VERTICES,
        )
    coordinates = shapely.get_coordinates(geometry)
    if not all(math.isfinite(v) for v in coordinates.ravel()):
        raise BadQuery(
            _("%(parameter)s has coordinates that are not numbers."),
            parameter=parameter,
        )
    if crs.swapped:
        geometry = shapely.transform(geometry, lambda xy: xy[:, ::-1])
    if not geometry.is_valid:
        raise BadQuery(
            _("%(parameter)s is not a valid geometry: %(reason)s"),
            parameter=parameter,
            reason=shapely.is_valid_reason(geometry),
        )
    stored = GEOSGeometry(memoryview(shapely.to_wkb(geometry)), srid=crs.srid)
    if crs.srid != STORAGE_SRID:
        west, south, east, north = api_crs.domain(crs)
        if not shapely.box(west, south, east, north).contains(geometry):
            raise BadQuery(
                _("%(parameter)s lies outside the area the registry covers (%(crs)s)."),
                parameter=parameter,
                crs=crs.uri,
            )
        stored.transform(STORAGE_SRID)
    if stored.area / 1e6 > MAX_AREA_KM2:
        raise BadQuery(
            _("%(parameter)s covers %(area)s km²; at most %(limit)s km² are accepted."),
            parameter=parameter,
            area=f"{stored.area / 1e6:,.1f}",
            limit=f"{MAX_AREA_KM2:,.0f}",
        )
    return stored


def _collection_depth(value) -> int:
    """Return how deep GeometryCollections nest in a GeoJSON object.

    Walked with a list, not by recursion: shapely's reader recurses once per
    level, and a body can nest hundreds of them.
    """
    deepest, pending = 0, [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict) and node.get("type") == "GeometryCollection":
            depth += 1
            deepest = max(deepest, depth)
            members = node.get("geometries")
            if isinstance(members, list):
                pending.extend((member, depth) for member in members)
    return deepest


def limit_of(
    text: str | None, *, default: int, maximum: int, parameter: str = "limit"
) -> int:
    """Return the page size asked for, refusing anything but 1 … ``maximum``."""
    if text is None or text == "":
        return default
    # Plain ASCII digits only: int() also reads "٣", " 5", "+5" and "1_000", and
    # would convert a million digits before the range check.
    limit = int(text) if DIGITS.fullmatch(text) else 0
    if not 1 <= limit <= maximum:
        raise BadQuery(
            _(
                "%(parameter)s must be a whole number from 1 to %(maximum)s, "
                "not %(value)s."
            ),
            parameter=parameter,
            maximum=maximum,
            value=text[:20],
        )
    return limit


def interval_of(
    text: str | None, *, parameter: str = "datetime"
) -> tuple[datetime | None, datetime | None]:
    """Return (start, end) of an RFC 3339 instant or ``start/end`` interval.

    ``..`` or an empty side is open. A date alone spans its whole day in
    Shanghai time.
    """
    if not text:
        return None, None
    try:
        if "/" not in text:
            return (
                parse_moment(text, name=parameter, day_starts=True),
                parse_moment(text, name=parameter),
            )
        start_text, end_text = text.split("/", 1)
        start = (
            None
            if start_text in ("", "..")
            else parse_moment(start_text, name=parameter, day_starts=True)
        )
        end = None if end_text in ("", "..") else parse_moment(end_text, name=parameter)
    except RegistryError as error:
        raise BadQuery(
            _("%(parameter)s is not an RFC 3339 date-time or interval: %(value)s"),
            parameter=parameter,
            value=text[:60],
        ) from error
    if start and end and start > end:
        raise BadQuery(
            _("%(parameter)s: the interval ends before it starts: %(value)s"),
            parameter=parameter,
            value=text[:60],
        )
    return start, end


def choices_of(
    text: str | None, allowed: Collection[str], *, parameter: str
) -> list[str] | None:
    """Return the comma-separated coded values asked for, each one checked."""
    if not text:
        return None
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadQuery(
            _("%(parameter)s: unknown value %(value)s; known values: %(known)s."),
            parameter=parameter,
            value=unknown[0][:40],
            known=", ".join(allowed),
        )
    return values


def boolean_of(text: str | None, *, parameter: str) -> bool | None:
    """Return true/false (also 1/0, yes/no), None when absent."""
    if text is None or text == "":
        return None
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise BadQuery(
        _("%(parameter)s must be true or false, not %(value)s."),
        parameter=parameter,
        value=text[:20],
    )


def _latitudes_plausible(*points, crs: ApiCrs, parameter: str) -> None:
    """Refuse latitudes beyond ±90: the usual sign of axes given the wrong way."""
    if not crs.geographic:
        return
    latitudes = [x if crs.swapped else y for x, y in points]
    if not all(-90 <= latitude <= 90 for latitude in latitudes):
        raise BadQuery(
            _(
                "%(parameter)s: latitudes must lie between -90 and 90; "
                "is the axis order right for %(crs)s?"
            ),
            parameter=parameter,
            crs=crs.uri,
        )


def _numbers(text: str, *, parameter: str, counts: tuple[int, ...]) -> list[float]:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in counts or not all(math.isfinite(n) for n in numbers):
        raise BadQuery(
            _(
                "%(parameter)s must be %(count)s comma-separated numbers, "
                "not %(value)s."
            ),
            parameter=parameter,
            count="/".join(map(str, counts)),
            value=text[:80],
        )
    return numbers


def _geos(geometry) -> GEOSGeometry:
    if geometry is None:
        return GEOSGeometry("POLYGON EMPTY", srid=STORAGE_SRID)
    return GEOSGeometry(memoryview(shapely.to_wkb(geometry)), srid=STORAGE_SRID)
