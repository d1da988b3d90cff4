"""The workflow table: forward one stage at a time, back only by a reopen."""

from itertools import product

import pytest

from registry.workflow import (
    CLEARED_STATUSES,
    ORDER,
    TRANSITIONS,
    Move,
    Status,
    move_between,
    next_status,
)
from tests.registry.helpers import ADVANCES, REOPENS, STAGES

ALL_PAIRS = list(product(STAGES, STAGES))


def expected_move(current: str, target: str) -> Move | None:
    if (current, target) in ADVANCES:
        return Move.ADVANCE
    if (current, target) in REOPENS:
        return Move.REOPEN
    return None


def test_there_are_six_stages_in_procedural_order():
    assert [s.value for s in ORDER] == STAGES
    assert [s.value for s in Status] == STAGES


def test_the_pairs_cover_every_combination_once():
    assert len(ALL_PAIRS) == 36
    assert len(ADVANCES) == 5
    assert len(REOPENS) == 15


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_each_pair_is_allowed_exactly_when_the_procedure_says(current, target):
    assert move_between(current, target) == expected_move(current, target)
    assert TRANSITIONS[Status(current)].get(Status(target)) == expected_move(
        current, target
    )


def test_the_table_holds_nothing_but_the_advances_and_reopens():
    allowed = {
        (current.value, target.value): move
        for current, targets in TRANSITIONS.items()
        for target, move in targets.items()
    }
    assert allowed == {
        **dict.fromkeys(ADVANCES, Move.ADVANCE),
        **dict.fromkeys(REOPENS, Move.REOPEN),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_it_never_allows_staying_in_the_same_stage(stage):
    assert move_between(stage, stage) is None


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ("surveyed", "declared"),
        ("declared", "verified"),
        ("verified", "signed"),
        ("signed", "cleared"),
        ("cleared", "banked"),
        ("banked", None),
    ],
)
def test_next_status_is_the_following_stage(current, expected):
    assert next_status(current) == expected


def test_next_status_of_every_stage_is_its_only_advance():
    for current in Status:
        advances = [t for t, m in TRANSITIONS[current].items() if m == Move.ADVANCE]
        assert advances == ([next_status(current)] if next_status(current) else [])


def test_banked_is_the_end_of_the_workflow():
    assert all(move == Move.REOPEN for move in TRANSITIONS[Status.BANKED].values())
    assert len(TRANSITIONS[Status.BANKED]) == 5


def test_surveyed_cannot_be_reopened_to_anything():
    assert list(TRANSITIONS[Status.SURVEYED]) == [Status.DECLARED]


def test_cleared_land_is_cleared_and_banked_land():
    assert {Status.CLEARED, Status.BANKED} == CLEARED_STATUSES


def test_unknown_statuses_are_not_stages():
    with pytest.raises(ValueError, match="demolished"):
        move_between("surveyed", "demolished")
    with pytest.raises(ValueError, match="approved"):
        next_status("approved")
