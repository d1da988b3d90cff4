"""Two case officers moving the same parcel at once, on two real connections.

``services.parcel_transition`` re-reads the parcel ``FOR UPDATE``: the second
officer's move waits for the first's transaction, then sees its result and is
refused with the reason, in Chinese and English; the history holds one move.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from registry import services
from registry.choices import Role
from registry.errors import RegistryError, TransitionRefused
from registry.models import Parcel, ParcelStatusChange
from tests.factories import ParcelFactory, user_with_role

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_on_a_lock(*, at_least: int, timeout: float = 10.0) -> int:
    """Wait until ``at_least`` other sessions wait on a row or advisory lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                "current_database() AND wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid()"
            )
            waiting = cursor.fetchone()[0]
        if waiting >= at_least:
            return waiting
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} sessions ever waited on a lock")


def in_thread(target, results: dict, key: str) -> threading.Thread:
    """Run ``target`` on a connection of its own; keep its outcome in ``results``."""

    def run() -> None:
        try:
            results[key] = target()
        except RegistryError as error:
            results[key] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_officers_moving_one_parcel_at_once_one_wins_the_other_is_told(
    project, case_officer
):
    other_officer = user_with_role(Role.CASE_OFFICER, project, username="officer-2")
    parcel = ParcelFactory(project=project, code="GM-RACE-1")
    first_moved, first_may_commit = threading.Event(), threading.Event()
    results: dict = {}

    def first():
        with transaction.atomic():
            change = services.parcel_transition(
                parcel=Parcel.objects.get(pk=parcel.pk),
                to_status="declared",
                actor=case_officer,
                reason="权属申报材料已收齐",
            )
            first_moved.set()
            # Still uncommitted: the second officer's move starts now.
            first_may_commit.wait(timeout=30)
        return change

    # Both officers opened the parcel while it was still 测绘评估 (surveyed).
    seen_by_second = Parcel.objects.get(pk=parcel.pk)
    first_thread = in_thread(first, results, "first")
    assert first_moved.wait(timeout=30)
    second_thread = in_thread(
        lambda: services.parcel_transition(
            parcel=seen_by_second,
            to_status="declared",
            actor=other_officer,
            reason="同一申报",
        ),
        results,
        "second",
    )
    assert waiting_on_a_lock(at_least=1) == 1
    assert second_thread.is_alive()
    first_may_commit.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)

    assert isinstance(results["first"], ParcelStatusChange)
    refusal = results["second"]
    assert isinstance(refusal, TransitionRefused)
    assert refusal.as_dict() == {
        "zh": "地块 GM-RACE-1 已处于“权属申报”状态。",
        "en": "Parcel GM-RACE-1 is already “Ownership declared”.",
    }
    assert Parcel.objects.get(pk=parcel.pk).status == "declared"
    history = ParcelStatusChange.objects.filter(parcel=parcel).exclude(move="create")
    assert list(history.values_list("from_status", "to_status", "actor")) == [
        ("surveyed", "declared", case_officer.pk)
    ]


def test_two_bulk_moves_over_overlapping_parcels_are_serialised_all_or_nothing(
    project, case_officer
):
    other_officer = user_with_role(Role.CASE_OFFICER, project, username="officer-2")
    a, b, c = (ParcelFactory(project=project, code=f"GM-BULK-{i}") for i in (1, 2, 3))
    first_moved, first_may_commit = threading.Event(), threading.Event()
    results: dict = {}

    def first():
        with transaction.atomic():
            moves = services.parcel_transition_bulk(
                parcels=[a, b], to_status="declared", actor=case_officer
            )
            first_moved.set()
            first_may_commit.wait(timeout=30)
        return moves

    first_thread = in_thread(first, results, "first")
    assert first_moved.wait(timeout=30)
    second_thread = in_thread(
        lambda: services.parcel_transition_bulk(
            parcels=[c, b], to_status="declared", actor=other_officer
        ),
        results,
        "second",
    )
    waiting_on_a_lock(at_least=1)
    first_may_commit.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)

    assert len(results["first"]) == 2
    refusal = results["second"]
    assert refusal.as_dict() == {
        "zh": "2 个地块中有 1 个被拒绝；未作任何变更。",
        "en": "1 of 2 parcels were refused; nothing was changed.",
    }
    assert [(code, error.en) for code, error in refusal.refusals] == [
        ("GM-BULK-2", "Parcel GM-BULK-2 is already “Ownership declared”.")
    ]
    statuses = dict(
        Parcel.objects.filter(project=project).values_list("code", "status")
    )
    assert statuses == {
        "GM-BULK-1": "declared",
        "GM-BULK-2": "declared",
        "GM-BULK-3": "surveyed",
    }
    assert ParcelStatusChange.objects.exclude(move="create").count() == 2
