"""Numeric columns in text files, as instruments and spreadsheets export them.

One place for what every text reader needs (EELS spectra in :mod:`layerscope.io.load`, powder
patterns in :mod:`layerscope.diffraction.formats_text`): UTF-8 with or without a byte-order mark
(else Latin-1), and data lines whose fields are separated by semicolons, tabs, commas or white
space, with a decimal comma where the separator allows one.
"""

from __future__ import annotations

import re

__all__ = ["NUMBER", "decode_text", "split_numbers"]

#: One numeric field (a decimal comma allowed; exponent optional).
NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def decode_text(data: bytes) -> str:
    """Text of a data file: UTF-8 (a byte-order mark dropped), else Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_numbers(line: str) -> list[float] | None:
    """The numbers of one data line, or None when it is not all numbers.

    Separators: semicolon, tab, comma or white space. A comma is a decimal comma when the fields
    are separated by semicolons or tabs (or when a comma-split would leave one column).
    """
    s = line.strip().lstrip("\ufeff")
    if ";" in s:
        fields, comma_decimal = s.split(";"), True
    elif "\t" in s:
        fields, comma_decimal = s.split("\t"), "." not in s
    elif "," in s:
        fields, comma_decimal = s.split(","), False
    else:
        fields, comma_decimal = s.split(), False
    fields = [f.strip() for f in fields if f.strip()]
    if not fields:
        return None
    out = []
    for f in fields:
        if comma_decimal:
            f = f.replace(",", ".")
        if not NUMBER.match(f) and f.lower() not in ("nan", "inf"):
            return None
        try:
            out.append(float(f))
        except ValueError:
            return None
    return out
