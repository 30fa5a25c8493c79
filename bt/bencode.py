"""Strict bencode (BEP 3): one canonical encoding for every value.

Decoding refuses anything a canonical encoder would not produce, because the
info-hash is computed over raw bytes: two encodings of the same value must not
both be accepted. Every failure is a :class:`BencodeError` naming the offset.

Decoded values are ``int``, ``bytes``, ``list`` and ``dict`` with ``bytes`` keys.
"""

from __future__ import annotations

from typing import Any

from bt.errors import BencodeError

__all__ = ["MAX_DEPTH", "BencodeError", "decode", "decode_prefix", "decode_with_spans", "encode"]

#: Containers may nest at most this deep; real metainfo uses fewer than 10.
MAX_DEPTH = 64

#: A string length longer than this many digits cannot fit any real input.
_MAX_LENGTH_DIGITS = 19
#: Integers longer than this many digits are refused (a 4 KiB number is an attack).
_MAX_INT_DIGITS = 64


def data_is_digits(chunk: bytes) -> bool:
    """True when ``chunk`` is ASCII digits only (``bytes.isdigit`` is ASCII-only)."""
    return chunk.isdigit()


def decode(data: bytes) -> Any:
    """Decode exactly one bencoded value that spans all of ``data``."""
    value, _ = decode_with_spans(data)
    return value


def decode_prefix(data: bytes) -> tuple[Any, int]:
    """Decode the one value ``data`` starts with; return it and where it ends.

    For messages that carry raw bytes after a bencoded header (BEP 9 metadata
    pieces): the header is as strict as any value, only what follows is not ours.
    """
    data = _checked_bytes(data)
    return _Decoder(data).value(0, 0, {})


def decode_with_spans(data: bytes) -> tuple[Any, dict[bytes, tuple[int, int]]]:
    """Decode ``data`` and, when it is a dict, report where each top-level value lies.

    The spans let metainfo hash the exact bytes of ``info`` without re-encoding.
    """
    data = _checked_bytes(data)
    spans: dict[bytes, tuple[int, int]] = {}
    decoder = _Decoder(data)
    value, end = decoder.value(0, 0, spans)
    if end != len(data):
        raise BencodeError(f"trailing data ({len(data) - end} bytes) after the value", end)
    return value, spans


def _checked_bytes(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BencodeError(f"expected bytes, got {type(data).__name__}", 0)
    if not data:
        raise BencodeError("empty input", 0)
    return bytes(data)


class _Decoder:
    __slots__ = ("data", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def value(
        self, pos: int, depth: int, spans: dict[bytes, tuple[int, int]] | None
    ) -> tuple[Any, int]:
        data = self.data
        if pos >= self.size:
            raise BencodeError("unexpected end of data, expected a value", pos)
        lead = data[pos]
        if 0x30 <= lead <= 0x39:
            return self.string(pos)
        if lead == 0x69:  # i
            return self.integer(pos)
        if lead == 0x6C:  # l
            return self.list(pos, depth + 1)
        if lead == 0x64:  # d
            return self.dict(pos, depth + 1, spans)
        if lead == 0x2D:  # '-': only a string length could be here
            raise BencodeError("negative string length", pos)
        raise BencodeError(f"invalid value type byte {bytes([lead])!r}", pos)

    def string(self, pos: int) -> tuple[bytes, int]:
        data = self.data
        limit = min(self.size, pos + _MAX_LENGTH_DIGITS + 1)
        colon = data.find(b":", pos, limit)
        if colon < 0:
            if not self._all_digits(pos, limit):
                raise BencodeError("invalid string length", pos)
            if limit == self.size:
                raise BencodeError("unterminated string length", pos)
            raise BencodeError("string length too long", pos)
        if not self._all_digits(pos, colon):
            raise BencodeError("invalid string length", pos)
        if colon - pos > 1 and data[pos] == 0x30:
            raise BencodeError("leading zero in string length", pos)
        start = colon + 1
        end = start + int(data[pos:colon])
        if end > self.size:
            raise BencodeError(f"string length {end - start} runs past the end of data", pos)
        return data[start:end], end

    def _all_digits(self, start: int, end: int) -> bool:
        return start < end and data_is_digits(self.data[start:end])

    def integer(self, pos: int) -> tuple[int, int]:
        data = self.data
        end = data.find(b"e", pos + 1, pos + _MAX_INT_DIGITS + 3)
        if end < 0:
            if data.find(b"e", pos + 1) < 0:
                raise BencodeError("unterminated integer", pos)
            raise BencodeError("integer too long", pos)
        body = data[pos + 1 : end]
        negative = body[:1] == b"-"
        digits = body[1:] if negative else body
        if not data_is_digits(digits):
            raise BencodeError(f"invalid integer {body!r}", pos)
        if digits[0] == 0x30 and (len(digits) > 1 or negative):
            raise BencodeError(
                "negative zero in integer"
                if negative and len(digits) == 1
                else "leading zero in integer",
                pos,
            )
        return int(body), end + 1

    def item(self, pos: int, depth: int) -> tuple[Any, int]:
        """One list item or dict value: strings and integers inline, the rest by ``value``.

        Most of a metainfo is short strings and integers; parsing them here
        without a method call per value is what makes decoding fast. Anything
        unusual falls back to the general path, which raises the precise error.
        """
        data = self.data
        if pos < self.size:
            lead = data[pos]
            if 0x31 <= lead <= 0x39 or (lead == 0x30 and data[pos + 1 : pos + 2] == b":"):
                colon = data.find(b":", pos, pos + _MAX_LENGTH_DIGITS + 1)
                if colon > 0:
                    digits = data[pos:colon]
                    if digits.isdigit():
                        end = colon + 1 + int(digits)
                        if end <= self.size:
                            return data[colon + 1 : end], end
            elif lead == 0x69:  # i
                end = data.find(b"e", pos + 1, pos + _MAX_INT_DIGITS + 3)
                if end > 0:
                    body = data[pos + 1 : end]
                    if body.isdigit() and (body[0] != 0x30 or end - pos == 2):
                        return int(body), end + 1
        return self.value(pos, depth, None)

    def list(self, pos: int, depth: int) -> tuple[list[Any], int]:
        if depth > MAX_DEPTH:
            raise BencodeError(f"nesting deeper than {MAX_DEPTH}", pos)
        data = self.data
        item = self.item
        items: list[Any] = []
        pos += 1
        while True:
            if pos >= self.size:
                raise BencodeError("unterminated list", pos)
            if data[pos] == 0x65:  # e
                return items, pos + 1
            value, pos = item(pos, depth)
            items.append(value)

    def dict(
        self, pos: int, depth: int, spans: dict[bytes, tuple[int, int]] | None
    ) -> tuple[dict[bytes, Any], int]:
        if depth > MAX_DEPTH:
            raise BencodeError(f"nesting deeper than {MAX_DEPTH}", pos)
        data = self.data
        size = self.size
        item = self.item
        result: dict[bytes, Any] = {}
        previous: bytes | None = None
        pos += 1
        while True:
            if pos >= size:
                raise BencodeError("unterminated dict", pos)
            lead = data[pos]
            if lead == 0x65:  # e
                return result, pos + 1
            if not 0x30 <= lead <= 0x39:
                raise BencodeError("dict key is not a string", pos)
            key_pos = pos
            key, pos = self.string(pos)
            if previous is not None and key <= previous:
                if key == previous:
                    raise BencodeError(f"duplicate dict key {key!r}", key_pos)
                raise BencodeError(f"dict key {key!r} out of sorted order", key_pos)
            previous = key
            start = pos
            result[key], pos = item(pos, depth)
            if spans is not None:
                spans[key] = (start, pos)


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically; ``str`` is UTF-8 encoded, dict keys are sorted.

    Raises ``TypeError`` for values bencode cannot express (floats, ``None``, bools).
    """
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    # Exact-type checks first: they are the common case and much cheaper than isinstance.
    if kind is bytes:
        out.append(b"%d:%b" % (len(value), value))
    elif kind is int:
        out.append(b"i%de" % value)
    elif kind is list or kind is tuple:
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif kind is dict:
        _encode_dict(value, out, depth)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(b"%d:%b" % (len(raw), raw))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(b"%d:%b" % (len(raw), raw))
    elif isinstance(value, bool):
        raise TypeError("bencode has no booleans; encode 0 or 1 explicitly")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, list | tuple):
        _encode(list(value), out, depth)
    elif isinstance(value, dict):
        _encode_dict(value, out, depth)
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def _encode_dict(value: dict[Any, Any], out: list[bytes], depth: int) -> None:
    if all(type(key) is bytes for key in value):
        keyed: dict[bytes, Any] = value
    else:
        keyed = {}
        for key, item in value.items():
            raw_key = key.encode("utf-8") if isinstance(key, str) else key
            if not isinstance(raw_key, bytes):
                raise TypeError(f"dict key must be bytes or str, not {type(key).__name__}")
            if raw_key in keyed:
                raise ValueError(f"dict key {raw_key!r} given twice")
            keyed[raw_key] = item
    out.append(b"d")
    for raw_key in sorted(keyed):
        out.append(b"%d:%b" % (len(raw_key), raw_key))
        _encode(keyed[raw_key], out, depth + 1)
    out.append(b"e")
