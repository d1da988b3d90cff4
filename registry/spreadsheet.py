"""CSV cells that a spreadsheet shows as text and never runs as a formula.

Excel, WPS and LibreOffice take a cell beginning with ``=``, ``+``, ``-`` or
``@`` (some versions also a tab or a carriage return) as a formula, and a
formula can fetch a URL or start a program ("CSV injection"). Text in the
registry's CSV files comes from survey files (parcel codes), from users (what
they typed) and from their clients (user agents), so such text gets a leading
apostrophe: the spreadsheet hides it and shows the cell as the text it is.
Numbers stay numbers.
"""

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """Return ``value`` as a cell no spreadsheet evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def row(values: Iterable) -> list:
    """Return a CSV row of cells no spreadsheet evaluates."""
    return [cell(value) for value in values]
