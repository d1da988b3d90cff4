"""Why a survey file was refused, said in Chinese and English, and where.

A refusal of the whole file (a hostile zip, no CRS, data far from Guangming) is an
``ImportRefused``; problems with single features are ``Problem`` rows in the
report, each naming the row, the parcel code and the field.
"""

import errno
from dataclasses import dataclass

from django.utils import translation
from django.utils.functional import Promise

from registry.errors import RegistryError


class ImportRefused(RegistryError):
    """The file as a whole cannot be imported; nothing was written."""


class NoRoom(ImportRefused):
    """The server's disk is full: the file may be fine, but it cannot be kept."""

    status = 507


#: The errors by which a file system says it is full.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


class BatchNotReady(ImportRefused):
    """The batch is not in the state the request needs (e.g. commit before check)."""

    status = 409


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth knowing) about one feature of the file.

    ``row`` is the 1-based record number in the source file, as the surveyor's
    GIS shows it; ``severity`` is "error" (the row is rejected) or "warning".
    """

    row: int | None
    code: str
    field: str
    zh: str
    en: str
    severity: str = "error"

    @classmethod
    def of(
        cls,
        template: Promise | str,
        *,
        row: int | None,
        code: str = "",
        field: str = "",
        severity: str = "error",
        **params,
    ) -> "Problem":
        """Render a translatable template in both languages into a Problem."""
        rendered = {}
        values = {"row": row, "code": code, "field": field, **params}
        for language in ("zh-hans", "en"):
            with translation.override(language):
                rendered[language] = str(template) % {
                    key: str(value) for key, value in values.items()
                }
        return cls(row, code, field, rendered["zh-hans"], rendered["en"], severity)

    def as_dict(self) -> dict:
        """Return the problem as JSON-ready data for the report."""
        return {
            "row": self.row,
            "code": self.code,
            "field": self.field,
            "severity": self.severity,
            "zh": self.zh,
            "en": self.en,
        }
