"""Assertions several registry test modules share."""

import re

from django.utils import translation

from registry.errors import RegistryError
from registry.models import Parcel, ParcelStatusChange
from registry.workflow import Status

HAN = re.compile(r"[\u4e00-\u9fff]")

# The procedure of the study, written out independently of registry.workflow.
STAGES = ["surveyed", "declared", "verified", "signed", "cleared", "banked"]

ADVANCES = [
    ("surveyed", "declared"),
    ("declared", "verified"),
    ("verified", "signed"),
    ("signed", "cleared"),
    ("cleared", "banked"),
]
REOPENS = [
    (current, earlier)
    for index, current in enumerate(STAGES)
    for earlier in STAGES[:index]
]


def zh_catalogue_compiled() -> bool:
    """Return whether the Simplified Chinese messages are compiled and loaded."""
    with translation.override("en"):
        english = str(Status.SURVEYED.label)
    with translation.override("zh-hans"):
        return str(Status.SURVEYED.label) != english


def assert_bilingual(error: RegistryError, *english_words: str) -> None:
    """Assert the refusal reads in English, and in Chinese once it is translated."""
    for word in english_words:
        assert word in error.en
    assert not HAN.search(error.en), error.en
    assert str(error) == f"{error.zh} / {error.en}"
    assert " / " in str(error)
    if zh_catalogue_compiled():
        assert HAN.search(error.zh), error.zh


def parcel_state(parcel: Parcel) -> dict:
    """Return what a user sees of a parcel's workflow, read from the database."""
    fresh = Parcel.objects.get(pk=parcel.pk)
    return {
        "status": fresh.status,
        "banked_on": fresh.banked_on,
        "bank_ref": fresh.bank_ref,
        "updated_at": fresh.updated_at,
        "history": list(
            ParcelStatusChange.objects.filter(parcel=parcel).values_list(
                "pk", "from_status", "to_status"
            )
        ),
    }


def change_form_data(parcel, **changes) -> dict:
    """Return what the change form posts when only ``changes`` are made."""
    data = {
        "code": parcel.code,
        "project": parcel.project_id or "",
        "land_class": parcel.land_class,
        "street": parcel.street,
        "geom": parcel.geom.ewkt,
        "declared_area_m2": parcel.declared_area_m2 or "",
        "new_status": "",
        "reason": "",
        "evidence_ref": "",
        "new_banked_on": "",
        "new_bank_ref": "",
        "_save": "Save",
    }
    data.update(changes)
    return data
