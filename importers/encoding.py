"""Choosing the text encoding of a shapefile's table, and never storing mojibake.

Order of evidence: the surveyor's explicit choice, the ``.cpg`` file, the DBF
language-driver byte (only its Chinese code pages: other values are too often a
tool's default to mean anything), then strict UTF-8, then GB18030. The choice is
then checked against every value: one that does not decode is an error naming
its row and field, and a declaration that the bytes contradict (a ``.cpg`` saying
GBK over valid UTF-8 text) refuses the file rather than import garbled names.
"""

import codecs
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext_lazy as _

from importers.errors import ImportRefused, Problem

# DBF language-driver ids of Chinese code pages (GBK; GB18030 is its superset).
CHINESE_LANGUAGE_DRIVERS = {0x4D: "gb18030", 0x7A: "gb18030"}
ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "65001": "utf-8",
    "gbk": "gb18030",
    "936": "gb18030",
    "cp936": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "54936": "gb18030",
    "ansi 936": "gb18030",
}


# Why an encoding was chosen, for the report.
SOURCE_LABELS = {
    "override": _("chosen by the surveyor"),
    "cpg": _("from the .cpg file"),
    "dbf-language-driver": _("from the DBF language byte"),
    "utf-8": _("the text is valid UTF-8"),
    "gb18030": _("not UTF-8, so GB18030"),
    "format": _("the format is always UTF-8"),
}


@dataclass
class Choice:
    """The encoding used, why, and what did not decode with it."""

    encoding: str
    source: str  # override, cpg, dbf-language-driver, utf-8, gb18030
    problems: list[Problem] = field(default_factory=list)


def normalise(name: str) -> str:
    """Return the Python codec for an encoding name as surveyors write it."""
    cleaned = name.strip().lower().replace("_", "-")
    if cleaned in ALIASES:
        return ALIASES[cleaned]
    try:
        return codecs.lookup(cleaned).name
    except LookupError as error:
        raise ImportRefused(
            _("Unknown text encoding “%(name)s”."), name=name.strip()
        ) from error


def choose(
    *,
    raw: dict[str, np.ndarray],
    rows: np.ndarray,
    override: str | None,
    cpg: str | None,
    language_driver: int,
    file: str,
) -> Choice:
    """Decide the encoding of ``raw`` values (field -> bytes per record)."""
    non_ascii = {name: _high_byte_rows(values) for name, values in raw.items()}
    if override:
        choice = Choice(normalise(override), "override")
    elif cpg and cpg.strip():
        choice = Choice(normalise(cpg), "cpg")
    elif language_driver in CHINESE_LANGUAGE_DRIVERS:
        choice = Choice(
            CHINESE_LANGUAGE_DRIVERS[language_driver], "dbf-language-driver"
        )
    elif _all_decode(raw, non_ascii, "utf-8"):
        return Choice("utf-8", "utf-8")
    else:
        choice = Choice("gb18030", "gb18030")
    if (
        choice.source in {"cpg", "dbf-language-driver"}
        and choice.encoding != "utf-8"
        and any(len(ix) for ix in non_ascii.values())
        and _all_decode(raw, non_ascii, "utf-8")
    ):
        where = ".cpg" if choice.source == "cpg" else _("DBF language byte")
        raise ImportRefused(
            _(
                "%(file)s: the %(where)s says %(declared)s, but the text is valid "
                "UTF-8; importing it as %(declared)s would garble every Chinese "
                "name. Choose the encoding (UTF-8) explicitly to import it."
            ),
            file=file,
            where=where,
            declared=choice.encoding.upper(),
        )
    for name, indexes in non_ascii.items():
        for index in indexes:
            value = raw[name][index]
            try:
                value.decode(choice.encoding)
            except UnicodeDecodeError:
                choice.problems.append(_undecodable(choice, rows[index], name, value))
    return choice


def decode_column(values: np.ndarray, encoding: str) -> np.ndarray:
    """Decode a column of bytes; values that do not decode become None."""
    try:
        # One C-level pass for the usual, clean column.
        return np.char.strip(np.char.decode(values, encoding)).astype(object)
    except UnicodeDecodeError:
        pass
    out = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        try:
            out[index] = value.decode(encoding).strip()
        except UnicodeDecodeError:
            out[index] = None
    return out


def _high_byte_rows(values: np.ndarray) -> np.ndarray:
    """Return the indexes of values holding any byte >= 0x80 (vectorised)."""
    width = values.dtype.itemsize
    if len(values) == 0 or width == 0:
        return np.array([], dtype=np.int64)
    as_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), width)
    return np.flatnonzero((as_bytes >= 0x80).any(axis=1))


def _all_decode(raw, non_ascii, encoding: str) -> bool:
    try:
        for name, indexes in non_ascii.items():
            for index in indexes:
                raw[name][index].decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(choice: Choice, row: int, field_name: str, value: bytes) -> Problem:
    alternatives = [
        codec
        for codec in ("utf-8", "gb18030")
        if codec != choice.encoding and _decodes(value, codec)
    ]
    if alternatives:
        return Problem.of(
            _(
                "The value is not valid %(encoding)s (chosen from %(source)s); as "
                "%(other)s it reads “%(text)s”. Choose that encoding to import it."
            ),
            row=int(row),
            field=field_name,
            encoding=choice.encoding.upper(),
            source=choice.source,
            other=alternatives[0].upper(),
            text=value.decode(alternatives[0])[:60],
        )
    return Problem.of(
        _("The value is not valid %(encoding)s text (bytes %(bytes)s)."),
        row=int(row),
        field=field_name,
        encoding=choice.encoding.upper(),
        bytes=value[:24].hex(" "),
    )


def _decodes(value: bytes, codec: str) -> bool:
    try:
        value.decode(codec)
    except UnicodeDecodeError:
        return False
    return True
