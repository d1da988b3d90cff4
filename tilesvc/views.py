"""Vector tiles and their TileJSON, for the map pages and for GIS clients.

Tiles need a logged-in user (session) or an API token, and a role in the
registry, like every other read. Errors are JSON that says what was wrong, in
Chinese and English.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from registry import query_params
from registry.errors import BadQuery, NotFound, RegistryError
from tilesvc import cache, keeper, vector
from tilesvc.lane import NO_BODY, in_tile_lane
from tilesvc.readers import Caller, tile_reader

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
log = logging.getLogger(__name__)


def _layer(name: str) -> vector.Layer:
    layer = vector.LAYERS.get(name)
    if layer is None:
        raise NotFound(
            _("There is no tile layer %(layer)s; the layers are %(known)s."),
            layer=name[:40],
            known=", ".join(vector.LAYERS),
        )
    return layer


def _filters(request, layer: vector.Layer) -> dict[str, list[str]]:
    filters = {}
    for name, text in request.GET.items():
        if name not in layer.filters:
            raise BadQuery(
                _("%(parameter)s is not a filter of the %(layer)s tiles."),
                parameter=name[:40],
                layer=layer.id,
            )
        allowed = layer.filters[name].values
        if allowed is None:  # free text (a project code)
            values = [v.strip() for v in text.split(",") if v.strip()]
        else:
            values = query_params.choices_of(text, allowed, parameter=name) or []
        if values:
            # Sorted and unique: one cache entry per filter, however it is spelt.
            filters[name] = sorted(set(values))
    return filters


class _TileResponse(HttpResponse):
    """A tile's response that keeps a freshly drawn tile once it has been sent.

    The WSGI server calls ``close`` after the last byte has gone out, so the
    client does not wait for the cache write, and the write itself is handed
    to the process's tile writer (``tilesvc.keeper``), so the next request on
    the connection does not either. The tile is kept with the stamp it was
    drawn under, so keeping it late is as safe as keeping it at once: a change
    in between has already given the tile a new generation, and the late copy
    is drawn again when next asked for.
    """

    keep = None

    def close(self):
        """Keep the tile, then finish."""
        try:
            keep_sent(self.keep)
        finally:
            super().close()


def keep_sent(keep: Callable[[], object] | None) -> None:
    """Keep a tile that has been sent (``Reply.keep``); a failure costs a redraw."""
    if keep is None:
        return
    try:
        keep()
    except Exception:
        log.exception("could not keep a tile in the cache")


@in_tile_lane  # what reaches Django: straight after the session and user middleware
@login_not_required  # sessions and tokens are checked here; anonymous gets a 401
@require_safe
def tile(request, layer: str, z: int, x: int, y: int):
    """Return one vector tile (204 when nothing is there).

    Most tiles are answered before Django by ``tilesvc.front`` with the same
    ``reply``; this view answers the rest, refusals and mistakes included.
    """
    started = time.perf_counter()
    try:
        caller = Caller.of(request)  # no query yet, but no credentials: 401
        try:
            spec, filters = tile_asked(request, layer, z, x, y)
        except RegistryError:
            caller.check()  # without a role, not even what is wrong is said
            raise
        answer = reply(
            caller, spec, z, x, y, filters, request.headers.get("If-None-Match", "")
        )
    except RegistryError as error:
        return error.response()
    response = _TileResponse(answer.body, status=answer.status)
    for name, value in answer.headers(started):
        response[name] = value
    response.keep = answer.keep
    return response


@dataclass(frozen=True)
class Reply:
    """A tile's answer: status, body, its own headers, and how to keep it."""

    status: int
    body: bytes
    etag: str
    source: str
    """``hit`` (a kept copy), ``miss`` (drawn now) or ``none`` (below minzoom)."""
    keep: Callable[[], object] | None
    marks: tuple[float, float]
    """When the kept copy had been looked for, and when the tile was ready."""

    def headers(self, started: float) -> list[tuple[str, str]]:
        """Return the tile's headers, with the time spent since ``started``."""
        looked_up, drawn = self.marks
        ms = 1000
        # No length on a 204 or 304, which carry no body (RFC 9110 §8.6).
        length = (
            [] if self.status in NO_BODY else [("Content-Length", str(len(self.body)))]
        )
        return [
            ("Content-Type", MEDIA_TYPE),
            *length,
            ("ETag", f'"{self.etag}"'),
            # Tiles change whenever a parcel under them does: the browser keeps
            # them but asks each time (answered by a 304 when nothing changed).
            # Private: the tiles are behind a login.
            ("Cache-Control", "private, no-cache"),
            ("X-Tile-Cache", self.source),
            # Time spent on the tile, and in its parts (finding the kept copy;
            # then the one statement that checks the caller and the stamp, and
            # draws a miss), for the benchmark and the browser's network panel.
            # Keeping a drawn tile happens after the response has been sent.
            (
                "Server-Timing",
                f"tile;dur={(time.perf_counter() - started) * ms:.2f};"
                f'desc="{self.source}", '
                f"lookup;dur={(looked_up - started) * ms:.2f}, "
                f"{'render' if self.source == 'miss' else 'access'};"
                f"dur={(drawn - looked_up) * ms:.2f}",
            ),
        ]


def reply(
    caller: Caller,
    spec: vector.Layer,
    z: int,
    x: int,
    y: int,
    filters: dict[str, list[str]],
    if_none_match: str,
) -> Reply:
    """Check the caller and answer with the tile: kept, drawn, or not modified.

    A tile not kept is drawn by the statement that also checks the caller and
    reads the tile's current stamp; a kept one is served after a statement
    that checks the caller and its stamp (``tilesvc.cache``), and drawn again
    by a second one if a change has made it stale. A refused caller raises
    the refusal (``RegistryError``).
    """
    if z < spec.minzoom:
        caller.check()
        data, etag, source, keep = b"", "empty", "none", None
        looked_up = drawn = time.perf_counter()
    else:
        key = cache.entry_key(spec, z, x, y, filters)
        kept = cache.get(key)
        looked_up = time.perf_counter()
        stamp_now = cache.stamp_query(spec, z, x, y)
        data = None
        if kept is not None:
            # The check and the stamp only: planning the tile's statement as
            # well would cost a kept tile more than its whole answer.
            stamp = caller.check(stamp_now)
            if stamp == kept[0]:  # never None: only stamped tiles are kept
                data, source, keep = kept[1], "hit", None
        if data is None:
            verdict, stamp, data = vector.render_gated(
                caller.gate, stamp_now, spec, z, x, y, filters
            )
            caller.admit(verdict)
            source = "miss"
            keep = partial(keeper.keep, key, stamp, data) if stamp else None
        drawn = time.perf_counter()
        # No stamp (a layer without an epoch yet): nothing is kept, and an ETag
        # that never matches.
        etag = cache.etag_of(key, stamp) if stamp else uuid.uuid4().hex
    if f'"{etag}"' in if_none_match:
        status, data = 304, b""
    else:
        status = 200 if data else 204
    return Reply(status, data, etag, source, keep, (looked_up, drawn))


def tile_asked(request, layer: str, z: int, x: int, y: int):
    """Return the layer and filters asked for, or refuse a tile that is not one."""
    spec = _layer(layer)
    if not 0 <= z <= spec.maxzoom or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(
            _("There is no tile %(z)s/%(x)s/%(y)s in layer %(layer)s."),
            z=z,
            x=x,
            y=y,
            layer=spec.id,
        )
    return spec, _filters(request, spec)


@login_not_required
@require_safe
def tilejson(request, layer: str):
    """Return the TileJSON 3.0.0 document of a layer (filters carry into tiles)."""
    try:
        tile_reader(request)
        spec = _layer(layer)
        filters = _filters(request, spec)
    except RegistryError as error:
        return error.response()
    template = request.build_absolute_uri(
        reverse("tile", args=[spec.id, 0, 0, 0]).replace("/0/0/0.mvt", "")
    )
    query = request.GET.urlencode()
    bounds = _bounds(filters.get("project"))
    return JsonResponse(
        {
            "tilejson": "3.0.0",
            "name": spec.id,
            "description": spec.description,
            "tiles": [template + "/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")],
            "minzoom": spec.minzoom,
            "maxzoom": spec.maxzoom,
            "bounds": bounds,
            "center": [
                round((bounds[0] + bounds[2]) / 2, 6),
                round((bounds[1] + bounds[3]) / 2, 6),
                max(spec.minzoom, 12),
            ],
            "vector_layers": [
                {
                    "id": spec.id,
                    "description": spec.description,
                    "fields": spec.fields,
                    "minzoom": spec.minzoom,
                    "maxzoom": spec.maxzoom,
                }
            ],
            "filters": filters,
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _bounds(projects: list[str] | None) -> list[float]:
    """Return the lon/lat bounds of the projects named, or of every project."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
                SELECT ST_Transform(ST_SetSRID(ST_Extent(boundary)::geometry, 4547),
                                    4326)::box2d AS b
                FROM registry_project
                WHERE %(codes)s::text[] IS NULL OR code = ANY(%(codes)s::text[])
            ) t
            """,
            {"codes": projects},
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        # No project yet: the whole district, roughly (113.75–114.05 E).
        return [113.75, 22.65, 114.05, 22.88]
    return [round(v, 6) for v in row]
