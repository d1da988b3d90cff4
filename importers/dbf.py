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
    data = path.read_bytes()
    if len(data) < 32:
        raise DbfError("shorter than a dBASE header")
    version = data[0]
    if version & 0x07 not in (2, 3, 4, 5):
        raise DbfError(f"version byte 0x{version:02x} is not dBASE")
    header_count, header_length, record_length = struct.unpack("<IHH", data[4:12])
    if header_length > len(data) or header_length < 33:
        raise DbfError("the header is cut short")
    language_driver = data[29]
    fields, raw_names, offset = [], {}, 32
    while offset + 32 <= header_length and data[offset] != 0x0D:
        descriptor = data[offset : offset + 32]
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
    body = data[header_length:]
    file_count = len(body) // record_length
    records = np.frombuffer(body[: file_count * record_length], dtype=np.uint8)
    records = records.reshape(file_count, record_length)
    deleted = records[:, 0] == ord("*")
    raw, start = {}, 1
    for field in fields:
        column = records[:, start : start + field.length]
        values = np.frombuffer(column.tobytes(), dtype=f"S{field.length}")
        # numpy's S dtype drops trailing NULs; dBASE pads with spaces.
        raw[field.name] = np.char.rstrip(values, b" ")
        start += field.length
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
