"""Bruker RAW files of versions 2, 3 and 4 built byte by byte after the published layouts
(see layerscope.diffraction.formats_bruker), with known angles, counts and wavelengths."""

from __future__ import annotations

import struct

import numpy as np


def _put(buf: bytearray, off: int, fmt: str, *vals) -> None:
    need = off + struct.calcsize(fmt)
    if len(buf) < need:
        buf.extend(b"\0" * (need - len(buf)))
    struct.pack_into(fmt, buf, off, *vals)


def _text(buf: bytearray, off: int, text: str, n: int) -> None:
    _put(buf, off, f"{n}s", text.encode("latin-1")[:n].ljust(n, b"\0"))


def raw_v1(ranges, ka=(1.5406, 1.54443), sample="S1") -> bytes:
    """ranges: list of (start_deg, step_deg, counts)."""
    buf = bytearray(b"RAW ")
    for k, (start, step, y) in enumerate(ranges):
        o = len(buf)
        _put(buf, o, "<I", len(y))
        _put(buf, o + 4, "<f", 1.0)
        _put(buf, o + 8, "<f", step)
        _put(buf, o + 20, "<f", start)
        _text(buf, o + 36, sample, 32)
        _put(buf, o + 68, "<ff", *ka)
        _put(buf, o + 148, "<I", 1 if k + 1 < len(ranges) else 0)
        _put(buf, o + 152, f"<{len(y)}f", *np.asarray(y, float))
    return bytes(buf)


def raw_v2(start, step, y, ka=(1.78897, 1.79285, 0.5), anode="Co") -> bytes:
    buf = bytearray(b"RAW2")
    _put(buf, 4, "<H", 1)
    _text(buf, 188, anode, 2)
    _put(buf, 190, "<fff", *ka)
    hlen = 64
    _put(buf, 256, "<HH", hlen, len(y))
    _put(buf, 256 + 8, "<fff", 2.0, step, start)
    _put(buf, 256 + hlen, f"<{len(y)}f", *np.asarray(y, float))
    return bytes(buf)


def raw_v3(start, step, y, ka=(1.5405929, 1.5444274, 0.5), anode="Cu", supplementary=40) -> bytes:
    buf = bytearray(b"RAW1.01")
    _put(buf, 12, "<I", 1)
    _text(buf, 326, "sample v3", 60)
    _text(buf, 608, anode, 4)
    _put(buf, 616, "<dddd d", (2 * ka[0] + ka[1]) / 3, ka[0], ka[1], 1.39222, ka[2])
    o = 712
    _put(buf, o, "<II", 304, len(y))
    _put(buf, o + 8, "<dd", start / 2, start)
    _put(buf, o + 176, "<d", step)
    _put(buf, o + 192, "<f", 0.5)
    _put(buf, o + 240, "<d", ka[0])
    _put(buf, o + 256, "<I", supplementary)
    _put(buf, o + 304 + supplementary, f"<{len(y)}f", *np.asarray(y, float))
    return bytes(buf)


def raw_v4(start, step, y, ka=(1.5405929, 1.5444274, 0.5), anode="Cu", scan="Locked Coupled") -> bytes:
    buf = bytearray(b"RAW4.00")
    _put(buf, 60, "<B", 0)  # 61-byte file header
    o = 61
    _put(buf, o, "<II", 10, 44)  # VarInfo segment: tag + value
    _text(buf, o + 12, "SampleName", 24)
    _text(buf, o + 36, "v4 test", 8)
    o += 44
    _put(buf, o, "<II", 30, 120)  # hardware configuration: wavelengths and anode
    _put(buf, o + 72, "<ddddd", (2 * ka[0] + ka[1]) / 3, ka[0], ka[1], 1.39222, ka[2])
    _text(buf, o + 116, anode, 4)
    o += 120
    extra = 64
    _put(buf, o, "<I", 0)  # a range
    _text(buf, o + 32, scan, 24)
    _put(buf, o + 72, "<ddI f", start, step, len(y), 1.5)
    _put(buf, o + 112, "<d", ka[0])
    _put(buf, o + 136, "<II", 4, extra)
    _put(buf, o + 160, "<II", 50, extra)  # one drive segment, skipped by the reader
    _text(buf, o + 160 + 12, "2Theta", 24)
    _put(buf, o + 160 + extra, f"<{len(y)}f", *np.asarray(y, float))
    return bytes(buf)
