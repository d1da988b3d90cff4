"""The application as ``make demo`` serves it: granian running ``config.wsgi``.

Django's test client calls Django directly, past the tile front, and a server
may treat a WSGI application differently from the specification (granian sends
a list without asking for its ``close``, which is where a drawn tile is kept):
so the front is also checked here through the real server, over loopback,
against the test database.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from registry.workflow import Status
from tests.factories import ParcelFactory
from tests.importers.faults import ROOT, free_port, subprocess_env
from tests.tilesvc.conftest import tile_of

GRANIAN = Path(sys.executable).parent / "granian"


@pytest.fixture
def served(transactional_db, tmp_path):
    """Start granian as ``make demo`` does, on the test database; its port."""
    port = free_port()
    env = subprocess_env(tmp_path)
    env.pop("DEBUG", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(GRANIAN), "--interface", "wsgi", "config.wsgi:application",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--blocking-threads", "2",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.close()


def get(port: int, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def test_the_served_application_draws_keeps_and_refuses_tiles(served, planner, project):
    parcel = ParcelFactory(code="SERVED-1", project=project, status=Status.CLEARED)
    tile = tile_of(parcel.geom, 16)
    path = f"/tiles/parcels/16/{tile.x}/{tile.y}.mvt"
    token = {"Authorization": f"Token {Token.objects.create(user=planner).key}"}

    first, body = get(served, path, token)
    # The tile is kept by the server's writer thread once it has been sent.
    for _ in range(50):
        again, kept = get(served, path, token)
        if again.getheader("X-Tile-Cache") == "hit":
            break
        time.sleep(0.1)
    anonymous, refusal = get(served, path)

    assert first.status == 200
    assert first.getheader("X-Tile-Cache") == "miss"
    assert first.getheader("Content-Length") == str(len(body))
    assert again.getheader("X-Tile-Cache") == "hit"
    assert kept == body
    assert again.getheader("ETag") == first.getheader("ETag")
    assert anonymous.status == 401
    assert "登录" in refusal.decode()


def test_the_served_application_serves_pages_and_static_files(served):
    login, page = get(served, "/accounts/login/")
    static, script = get(served, "/static/vendor/leaflet/leaflet.js")

    assert login.status == 200
    assert "登录" in page.decode()
    # From the app's own static files (WhiteNoise), as on an intranet.
    assert static.status == 200
    assert script == (ROOT / "registry/static/vendor/leaflet/leaflet.js").read_bytes()
