"""A minimal dBASE (.dbf) reader: raw bytes per field, and honest record counts.

GDAL decodes shapefile text with whatever encoding it guesses and silently skips
records flagged deleted; a registry cannot afford either. This reader returns the
raw, undecoded bytes of every field of every record (numpy, no Python loop per
record), the deletion flags, the language-driver byte and both record counts,
the header's and the file's, so that the importer decides the encoding itself and
reports every record it will not import.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DbfField:
    """One column of the table as declared in the header."""

    name: str
    kind: str  # C (text), N/F (number), D (date), L (logical), ...
    length: int
    decimals: int


@dataclass
class DbfTable:
    """The table's header facts and its raw values, one bytes array per field."""

    fields: list[DbfField]
    header_count: int
    file_count: int
    language_driver: int
    deleted: np.ndarray  # bool per record
    raw: dict[str, np.ndarray]  # field name -> bytes per record (rstripped)
    raw_names: dict[str, bytes]  # field name -> the name's undecoded bytes


class DbfError(ValueError):
    """The file is not a readable dBASE table."""


def read_dbf(path: Path, *, name_encoding: str = "gb18030") -> DbfTable:
    """Read the table at ``path``. Field names are decoded with ``name_encoding``."""
    # Memory-mapped: the table is read field by field, never copied whole.
    data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else b""
    if len(data) < 32:
        raise DbfError("shorter than a dBASE header")
    head = bytes(data[:32])
    version = head[0]
    if version & 0x07 not in (2, 3, 4, 5):
        raise DbfError(f"version byte 0x{version:02x} is not dBASE")
    header_count, header_length, record_length = struct.unpack("<IHH", head[4:12])
    if header_length > len(data) or header_length < 33:
        raise DbfError("the header is cut short")
    header = bytes(data[:header_length])
    language_driver = header[29]
    fields, raw_names, offset = [], {}, 32
    while offset + 32 <= header_length and header[offset] != 0x0D:
        descriptor = header[offset : offset + 32]
        raw_name = descriptor[:11].split(b"\x00", 1)[0]
        name = raw_name.decode(name_encoding, errors="replace").strip()
        field = DbfField(name, chr(descriptor[11]), descriptor[16], descriptor[17])
        fields.append(field)
        raw_names[name] = raw_name
        offset += 32
    if not fields or record_length < 1:
        raise DbfError("no field descriptors")
    if sum(f.length for f in fields) + 1 != record_length:
        raise DbfError("field lengths do not add up to the record length")
    if any(not f.name for f in fields) or len({f.name for f in fields}) != len(fields):
        raise DbfError("a field has no name, or two fields have the same name")
    file_count = (len(data) - header_length) // record_length
    layout = np.dtype(
        # The flag's name cannot be a field's: field names never hold a NUL.
        [("\x00deleted", "S1")] + [(f.name, f"S{f.length}") for f in fields]
    )
    records = np.frombuffer(data, dtype=layout, count=file_count, offset=header_length)
    deleted = records["\x00deleted"] == b"*"
    # numpy's S dtype drops trailing NULs; dBASE pads with spaces.
    raw = {f.name: np.char.rstrip(records[f.name], b" ") for f in fields}
    return DbfTable(
        fields, header_count, file_count, language_driver, deleted, raw, raw_names
    )


def shx_record_count(path: Path) -> int:
    """Return how many shapes the .shx index lists (from its file length)."""
    header = path.read_bytes()[:100]
    if len(header) < 100 or struct.unpack(">i", header[:4])[0] != 9994:
        raise DbfError("not a shapefile index")
    length_words = struct.unpack(">i", header[24:28])[0]
    return (length_words * 2 - 100) // 8
