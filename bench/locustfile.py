"""The users of the load benchmark (``bench/load_bench.py`` runs this headless).

Each simulated user is a planner at a map: mostly tiles already drawn (the map
panned over land someone looked at before), some tiles never drawn yet, bbox
queries through the REST and OGC API, project map pages and the statistics.
Everything the users ask comes from the JSON file named by ``LOAD_CONFIG``,
written by the benchmark from the database (see there), so that a run is the
same every time.
"""

import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

from locust import FastHttpUser, between, events, task

# locust puts only this folder on the path; the project's for bench.common.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile

CONFIG = json.loads(Path(os.environ["LOAD_CONFIG"]).read_text())
API = {"Authorization": f"Token {CONFIG['token']}"}
PAGE = {"Cookie": f"{CONFIG['session_cookie']}={CONFIG['session']}"}
# One iterator for every user of this process: each of these tiles is asked
# once, so it is drawn by the request that asks it.
NEVER_DRAWN = iter(CONFIG["uncached_tiles"])
# What the server said about the tile cache (X-Tile-Cache), per kind of request,
# and how long the tile view itself took (Server-Timing), in milliseconds.
CACHE_SEEN: Counter = Counter()
IN_SERVER_MS: dict[str, list[float]] = {}
ACCEPTED = (200, 204)


class Planner(FastHttpUser):
    """A planner at the map, with a second or so between actions."""

    wait_time = between(0.5, 1.5)

    def _get(self, path: str, name: str, headers: dict = API) -> None:
        with self.client.get(
            path, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code not in ACCEPTED:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif name.startswith("tile"):
                CACHE_SEEN[f"{name}: {response.headers.get('X-Tile-Cache')}"] += 1
                timing = response.headers.get("Server-Timing", "")
                if timing.startswith("tile;dur="):
                    ms = float(timing.split(";", 2)[1].removeprefix("dur="))
                    IN_SERVER_MS.setdefault(name, []).append(ms)

    @task(40)
    def cached_tile(self) -> None:
        """Ask a tile drawn before the run (the cache holds it)."""
        self._get(random.choice(CONFIG["cached_tiles"]), "tile, cached")

    @task(10)
    def uncached_tile(self) -> None:
        """Ask a tile nobody has asked yet (drawn by this request)."""
        path = next(NEVER_DRAWN, None)
        if path is None:  # the pool ran out: ask one of them again
            self._get(random.choice(CONFIG["uncached_tiles"]), "tile, asked again")
        else:
            self._get(path, "tile, uncached")

    @task(10)
    def bbox_rest(self) -> None:
        """List the parcels in a box of a few hundred metres (REST)."""
        bbox = random.choice(CONFIG["bboxes"])
        self._get(f"/api/parcels/?bbox={bbox}&limit=100", "bbox /api/parcels/")

    @task(10)
    def bbox_ogc(self) -> None:
        """List the parcels in a box of a few hundred metres (OGC API)."""
        bbox = random.choice(CONFIG["bboxes"])
        self._get(
            f"/ogcapi/collections/parcels/items?bbox={bbox}&limit=100",
            "bbox /ogcapi/…/items",
        )

    @task(5)
    def project_map(self) -> None:
        """Open a project's map page (the HTML, with its totals)."""
        code = random.choice(CONFIG["projects"])
        self._get(f"/projects/{code}/map", "project map page", headers=PAGE)

    @task(5)
    def statistics(self) -> None:
        """Read the progress statistics (district and per project)."""
        self._get("/api/statistics/progress/", "statistics")


@events.test_stop.add_listener
def _save_cache_outcomes(environment, **kwargs) -> None:
    out = os.environ.get("LOAD_CACHE_OUT")
    if out:
        in_server = {
            name: {
                "p50_ms": percentile(times, 50),
                "p95_ms": percentile(times, 95),
                "p99_ms": percentile(times, 99),
            }
            for name, times in IN_SERVER_MS.items()
        }
        Path(out).write_text(
            json.dumps({"seen": dict(CACHE_SEEN), "in_server": in_server}, indent=2)
        )
