"""A small registry for the OGC API clients: two projects, 25 parcels.

The parcels are not all squares: a triangle, an L, a square with a hole and a
parcel of two parts, so that bounding boxes, areas and axis orders are tested
on shapes whose answers differ when something is wrong. Three parcels belong to
no project. Rows are made in the test's own thread, before any client runs.
"""

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon

from registry.choices import LandClass
from registry.models import Parcel
from registry.workflow import Status
from spatial.crs import STORAGE_SRID
from tests.factories import ParcelFactory, ProjectFactory, parcel_square
from tests.factories import square as factory_square

PROJECT_NAMES = {"GM-SC": "光明科学城启动区", "GM-L6": "轨道6号线"}
CLASSES = [
    LandClass.COLLECTIVE,
    LandClass.STATE_FARM,
    LandClass.UNFINISHED_EXPROPRIATION,
]
STAGES = [Status.SURVEYED, Status.DECLARED, Status.SIGNED, Status.CLEARED]


def _shape(kind: str, x: float, y: float, side: float) -> MultiPolygon:
    """Return a parcel of ``kind`` whose cell's lower-left corner is (x, y)."""
    if kind == "triangle":
        polygons = [Polygon(((x, y), (x + side, y), (x, y + side), (x, y)))]
    elif kind == "ell":
        half = side / 2
        polygons = [
            Polygon(
                (
                    (x, y),
                    (x + side, y),
                    (x + side, y + half),
                    (x + half, y + half),
                    (x + half, y + side),
                    (x, y + side),
                    (x, y),
                )
            )
        ]
    elif kind == "holed":
        outer = ((x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y))
        a, b = x + side * 0.25, y + side * 0.25
        c, d = x + side * 0.75, y + side * 0.75
        hole = ((a, b), (a, d), (c, d), (c, b), (a, b))
        polygons = [Polygon(outer, hole)]
    elif kind == "two_parts":
        third = side / 3
        polygons = [
            Polygon.from_bbox((x, y, x + third, y + side)),
            Polygon.from_bbox((x + 2 * third, y, x + side, y + side)),
        ]
    else:
        return factory_square(x, y, side)
    return MultiPolygon(*polygons, srid=STORAGE_SRID)


SHAPES = ["square", "triangle", "ell", "holed", "two_parts"]


def make_registry() -> list[Parcel]:
    """Make two projects and 25 parcels of known shapes; return the parcels."""
    projects = [
        ProjectFactory(code=code, name_zh=name) for code, name in PROJECT_NAMES.items()
    ]
    parcels = []
    for n in range(25):
        project = None if n >= 22 else projects[n % 2]
        position = n // 2 if project else 40 + n
        side = 30.0 + 8 * n
        x, y, _x1, _y1 = parcel_square(project, position, side).extent
        stage = STAGES[n % len(STAGES)]
        parcels.append(
            ParcelFactory(
                code=f"GM-{n:03d}",
                project=project,
                land_class=CLASSES[n % 3],
                status=stage,
                geom=_shape(SHAPES[n % len(SHAPES)], x, y, side),
            )
        )
    return parcels


@pytest.fixture
def registry_parcels(db) -> list[Parcel]:
    return make_registry()
