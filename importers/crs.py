"""The coordinate system of an upload, its move into EPSG:4547, and sanity checks.

The CRS is read with pyproj, never GDAL: from the surveyor's choice
(``EPSG:N`` or WKT), else the ``.prj`` (ESRI WKT included) or the file's own
definition. A file without one is refused. After the transform the data must lie
in the service area; when it does not, the usual mistakes are recognised from the
numbers and named: swapped axes, a zone prefix missing or extra (EPSG:4547 vs
4526), and GCJ-02 ("Mars") coordinates from a Chinese web map.
"""

from dataclasses import dataclass, field

import numpy as np
import shapely
from django.utils.translation import gettext_lazy as _
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from pyproj.transformer import TransformerGroup

from importers.errors import ImportRefused, Problem
from spatial import gcj02
from spatial.crs import STORAGE_SRID, WGS84_SRID, transformer


@dataclass
class ResolvedCrs:
    """The upload's CRS, where it came from, and anything worth a warning."""

    crs: CRS
    source: str  # override, prj, file
    warnings: list = field(default_factory=list)

    @property
    def label(self) -> str:
        """Return "EPSG:N name" or the CRS name for display and the batch record."""
        code = self.crs.to_epsg(min_confidence=90)
        return f"EPSG:{code} {self.crs.name}" if code else self.crs.name


def resolve(
    *, override: str | None, declared_wkt: str | None, file: str
) -> ResolvedCrs:
    """Return the CRS to read the upload in, or refuse the file."""
    if override:
        text, source = override.strip(), "override"
    elif declared_wkt and declared_wkt.strip():
        text, source = declared_wkt.strip(), "prj"
    else:
        raise ImportRefused(
            _(
                "%(file)s does not say which coordinate system it uses (no .prj or "
                "CRS). Name it, e.g. EPSG:4547 (CGCS2000 / 3-degree GK CM 114E)."
            ),
            file=file,
        )
    try:
        crs = CRS.from_user_input(text)
    except CRSError as error:
        raise ImportRefused(
            _("%(file)s: the coordinate system “%(crs)s” is not understood: %(error)s"),
            file=file,
            crs=text[:120],
            error=str(error)[:200],
        ) from error
    resolved = ResolvedCrs(crs, source)
    if not (crs.is_projected or crs.is_geographic):
        raise ImportRefused(
            _("%(file)s: %(crs)s is neither geographic nor projected."),
            file=file,
            crs=resolved.label,
        )
    if _only_ballpark(crs):
        resolved.warnings.append(
            Problem.of(
                _(
                    "No datum transformation from %(crs)s to CGCS2000 is known; "
                    "positions may be off by tens of metres. Check them on the map."
                ),
                row=None,
                severity="warning",
                crs=resolved.label,
            )
        )
    return resolved


def to_storage(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Transform shapely geometries from ``crs`` into EPSG:4547."""
    if crs.to_epsg() == STORAGE_SRID:
        return geoms
    forward = Transformer.from_crs(crs, CRS.from_epsg(STORAGE_SRID), always_xy=True)
    return shapely.transform(
        geoms,
        lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])),
    )


def extent_hints(
    source_geoms: np.ndarray, crs: CRS, area, project_boundary=None
) -> list:
    """Return translatable hints explaining why data fell outside ``area``."""
    hints = []
    minx, miny, maxx, maxy = shapely.total_bounds(source_geoms)
    swapped = shapely.transform(source_geoms, lambda xy: xy[:, ::-1])
    if _inside(to_storage(swapped, crs), area):
        hints.append(_("The X and Y (or longitude and latitude) look swapped."))
    epsg = crs.to_epsg()
    if epsg == STORAGE_SRID and minx > 1e7:
        hints.append(
            _(
                "Eastings carry a zone prefix (e.g. 38 500 000): the file is probably "
                "EPSG:4526, not EPSG:4547."
            )
        )
    if epsg == 4526 and maxx < 1e6:
        hints.append(
            _(
                "Eastings have no zone prefix: the file is probably EPSG:4547, "
                "not EPSG:4526."
            )
        )
    if crs.is_geographic and not (minx > 73 and maxx < 136 and miny > 3 and maxy < 54):
        hints.append(_("The coordinates are not longitudes and latitudes in China."))
    return hints


SAMPLE = 2000


def gcj02_hint(storage_geoms: np.ndarray, project_boundary) -> list:
    """Return a hint if the data fit the project only after undoing GCJ-02.

    GCJ-02 shifts Guangming by about 600 m, well within the service margin, so it
    is noticed against the project's boundary: the data miss most of it, and
    moved back from GCJ-02 to WGS84 they fall into it.
    """
    if project_boundary is None or project_boundary.is_empty or len(storage_geoms) == 0:
        return []
    # A sample of points on the parcels is enough to tell, and stays cheap for a
    # million parcels.
    step = max(1, len(storage_geoms) // SAMPLE)
    points = shapely.point_on_surface(storage_geoms[::step])
    xy = shapely.get_coordinates(points)
    shapely.prepare(project_boundary)
    if shapely.contains_xy(project_boundary, xy[:, 0], xy[:, 1]).mean() > 0.5:
        return []
    lon, lat = transformer(STORAGE_SRID, WGS84_SRID).transform(xy[:, 0], xy[:, 1])
    lon, lat = gcj02.gcj02_to_wgs84(lon, lat)
    x, y = transformer(WGS84_SRID, STORAGE_SRID).transform(lon, lat)
    if shapely.contains_xy(project_boundary, x, y).mean() > 0.9:
        return [
            _(
                "The data sit about 600 m off the project; moved from GCJ-02 (the "
                "offset of AMap/Tencent maps) to WGS84 they fit it. Were they "
                "digitised on a Chinese web map?"
            )
        ]
    return []


def _inside(storage_geoms: np.ndarray, area) -> bool:
    present = storage_geoms[~shapely.is_missing(storage_geoms)]
    return len(present) > 0 and bool(np.all(shapely.intersects(area, present)))


def _only_ballpark(crs: CRS) -> bool:
    if crs.geodetic_crs is None:
        return False
    datum = crs.geodetic_crs.datum.name.lower()
    # CGCS2000 and WGS84 agree to centimetres: no shift is needed between them.
    if any(name in datum for name in ("2000", "wgs", "world geodetic system")):
        return False
    group = TransformerGroup(crs, CRS.from_epsg(STORAGE_SRID), always_xy=True)
    return all("ballpark" in t.description.lower() for t in group.transformers)
