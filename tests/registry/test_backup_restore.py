"""Backup and restore (scripts/backup.sh, scripts/restore.sh), as the README says.

The registry is filled through its services (parcels moved through the
workflow, buildings, a bulk move; history, audit and tally rows all follow),
dumped with ``backup.sh``, restored with ``restore.sh`` into a new database on
the same server, and the two compared table by table: every row of every table
identical, the same parcel and building areas (``ST_Area``), the same history,
the same statistics tally, sequences where they were. The restored database
keeps its rules (history is still append-only) and a second restore into an
existing database is refused.
"""

import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from registry import services
from tests.factories import BuildingFactory, ParcelFactory
from tests.importers.faults import database_url

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def figures(url: str) -> dict:
    """Return what a restore must give back, read with SQL."""
    with psycopg.connect(url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE "
                "table_schema = 'public' AND table_type = 'BASE TABLE' AND "
                "table_name <> 'spatial_ref_sys' ORDER BY 1"
            )
        ]
        contents = {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                f"ORDER BY t::text), '')) FROM \"{table}\" t"
            ).fetchone()
            for table in tables
        }
        areas = conn.execute(
            "SELECT (SELECT round(sum(ST_Area(geom))::numeric, 3) FROM "
            "registry_parcel), (SELECT round(sum(area_m2)::numeric, 3) FROM "
            "registry_parcel), (SELECT round(sum(ST_Area(footprint))::numeric, 3) FROM "
            "registry_building)"
        ).fetchone()
        history = conn.execute(
            "SELECT from_status, to_status, move, reason FROM "
            "registry_parcelstatuschange ORDER BY id"
        ).fetchall()
        tally = conn.execute(
            "SELECT project_id, land_class, status, street, sum(parcels), "
            "round(sum(area_m2)::numeric, 3) FROM registry_parceltally "
            "GROUP BY 1, 2, 3, 4 HAVING sum(parcels) <> 0 ORDER BY 1, 2, 3, 4"
        ).fetchall()
        sequences = dict(
            conn.execute(
                "SELECT sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = 'public'"
            ).fetchall()
        )
    return {
        "contents": contents,
        "areas": areas,
        "history": history,
        "tally": tally,
        "sequences": sequences,
    }


def script(name: str, *args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def restored_name():
    """Return a database name of this test's own; drop it afterwards."""
    name = f"{connection.settings_dict['NAME']}_restored"
    drop = ["dropdb", "--if-exists", "-h", connection.settings_dict["HOST"]]
    drop += ["-p", str(connection.settings_dict["PORT"]), "-U"]
    drop += [connection.settings_dict["USER"], name]
    subprocess.run(drop, check=True, env={"PGPASSWORD": "landreg", "PATH": "/usr/bin"})
    yield name
    subprocess.run(drop, check=True, env={"PGPASSWORD": "landreg", "PATH": "/usr/bin"})


def test_a_backup_restores_into_a_new_database_identical(
    project, case_officer, registry_admin, tmp_path, restored_name
):
    parcels = [ParcelFactory(project=project, code=f"GM-BK-{i:03d}") for i in range(30)]
    for parcel in parcels[:10]:
        BuildingFactory(parcel=parcel)
    services.parcel_transition_bulk(
        parcels=parcels[:20], to_status="declared", actor=case_officer, reason="申报"
    )
    for parcel in parcels[:5]:
        services.parcel_transition(
            parcel=parcel, to_status="verified", actor=case_officer, reason="核查"
        )
    services.parcel_transition(
        parcel=parcels[0],
        to_status="declared",
        actor=registry_admin,
        reason="复核：权属材料有误",
    )
    source = database_url()
    before = figures(source)
    assert before["contents"]["registry_parcel"][0] == 30
    assert len(before["history"]) == 20 + 5 + 1

    dump = tmp_path / "backups" / "registry.dump"
    backed_up = script("backup.sh", str(dump), url=source)
    assert backed_up.returncode == 0, backed_up.stderr
    assert backed_up.stdout.strip() == str(dump)
    assert dump.stat().st_mode & 0o077 == 0  # owners' data: the owner's only
    restored = script("restore.sh", str(dump), restored_name, url=source)
    assert restored.returncode == 0, restored.stderr
    target = database_url(restored_name)

    after = figures(target)
    assert after["areas"] == before["areas"]
    assert after["history"] == before["history"]
    assert after["tally"] == before["tally"]
    assert after["sequences"] == before["sequences"]
    assert after["contents"] == before["contents"]
    with psycopg.connect(target) as conn, pytest.raises(psycopg.Error):
        conn.execute("UPDATE registry_parcelstatuschange SET reason = 'edited'")

    again = script("restore.sh", str(dump), restored_name, url=source)
    assert again.returncode == 1
    assert f"database {restored_name} exists" in again.stderr
    assert figures(target)["contents"] == before["contents"]


def test_a_damaged_backup_is_refused_before_anything_is_restored(
    project, tmp_path, restored_name
):
    ParcelFactory(project=project)
    source = database_url()
    dump = tmp_path / "registry.dump"
    assert script("backup.sh", str(dump), url=source).returncode == 0
    with dump.open("r+b") as handle:
        handle.seek(dump.stat().st_size // 2)
        handle.write(b"\0" * 64)

    restored = script("restore.sh", str(dump), restored_name, url=source)

    assert restored.returncode != 0
    assert "FAILED" in restored.stdout + restored.stderr  # sha256sum's verdict
    with psycopg.connect(database_url("postgres")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [restored_name]
        ).fetchone() == (0,)
