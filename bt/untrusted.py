"""Showing what remote parties say: bounded, escaped text for logs, status and errors.

A tracker's failure reason, an HTTP status line, a URL from a .torrent file or
a path an API client sent are written by someone else. Whole, they can be a
megabyte per log line, or carry ANSI escapes that repaint an operator's
terminal. :func:`shown` is the one gate such text passes before bt logs,
stores or echoes it. Pure: no Twisted, no I/O.
"""

from __future__ import annotations

__all__ = ["LIMIT", "shown"]

#: Characters of remote text kept; the rest is counted, not shown.
LIMIT = 200

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: str | bytes, limit: int = LIMIT) -> str:
    """``text`` as one printable line of at most about ``limit`` characters.

    Bytes are read as UTF-8, undecodable bytes shown as ``\\xNN``. Control and
    other non-printable characters (ANSI escapes, NUL, newlines, bidi
    overrides) are escaped as in ``repr``; printable text, non-ASCII letters
    included, is kept as it is. Text over ``limit`` is cut (never inside an
    escape) and ends with how long the original was.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
        # Four bytes per character at most: decoding more could never be shown.
        head = raw[: limit * 4].decode("utf-8", errors="surrogateescape")
        total, unit = len(raw), "bytes"
    else:
        head, total, unit = text[: limit + 1], len(text), "characters"
    # ``head`` holds more than ``limit`` characters whenever the original is too long,
    # so the loop below stops early exactly when something is left out.
    pieces: list[str] = []
    used = 0
    for char in head:
        piece = char if char.isprintable() else _escape(char)
        if used + len(piece) > limit:
            return "".join(pieces) + f"… ({total} {unit})"
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
