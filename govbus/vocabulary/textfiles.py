"""Text files a user hands to govbus (records, catalog CSV): their encoding, detected or named.

Chinese offices save CSV files two ways: Excel's "CSV UTF-8" (UTF-8 with a byte order mark) and
plain "CSV" on a Chinese Windows, which is the ANSI code page 936 (GBK). Neither says so inside
the file, so ``encoding=None`` decides by decoding, strictly, the whole file:

1. UTF-8, with or without the BOM (the BOM is dropped); pure ASCII is UTF-8 too;
2. else GB18030, a superset of GBK and GB2312 (what Excel's GBK files decode as).

Real Chinese text in GBK is practically never valid UTF-8 (its byte pairs break UTF-8's
continuation rules at the first character), so the order is safe; statistical detectors guess
wrongly on short files of a few Chinese names, which is what these files often are.

A file with a NUL byte, or one neither encoding decodes, is not text: ``TextFileError`` names the
file, the byte offset (and line) and says to give ``--encoding``. ``encoding="big5"`` (any
Python codec name) is used as given, still strictly. The whole file is checked before it is
opened, so nothing is published from a file that turns out to be unreadable halfway.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TextIO

from govbus.vocabulary.errors import UserError

__all__ = ["TextFileError", "check_encoding", "detect_encoding", "open_text", "resolve_encoding"]

_CHUNK = 1 << 20
ENCODING_HINT = "give its encoding with --encoding NAME, e.g. --encoding big5 or utf-16"


class TextFileError(UserError):
    """A file the user gave is not text in the expected encoding; says where and what to do."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem  # the message without the file name (callers that name it)
        super().__init__(f"{self.path}: {problem}")


def check_encoding(name: str) -> str:
    """The codec's canonical name, or UserError for a name Python does not know as a text codec."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise UserError(
            f"unknown text encoding {name!r}: give a codec name such as utf-8, gb18030 (also "
            "reads GBK and GB2312), big5 or utf-16"
        )
    return info.name


def detect_encoding(path: str | Path) -> str:
    """``utf-8-sig`` (reads UTF-8 with or without a BOM) or ``gb18030``; else TextFileError."""
    path = Path(path)
    utf8 = _first_problem(path, "utf-8")
    if utf8 is None:
        return "utf-8-sig"
    if utf8[1] == "nul":
        raise _binary(path, utf8[0])
    gb = _first_problem(path, "gb18030")
    if gb is None:
        return "gb18030"
    if gb[1] == "nul":
        raise _binary(path, gb[0])
    raise TextFileError(
        path,
        f"neither UTF-8 nor GB18030/GBK text: UTF-8 fails at {_where(path, utf8[0])} "
        f"({utf8[2]}), GB18030 at {_where(path, gb[0])} ({gb[2]}); if it is text, "
        f"{ENCODING_HINT}",
    )


def resolve_encoding(path: str | Path, encoding: str | None = None) -> str:
    """The codec to read ``path`` with: ``encoding`` checked against the file, or detected."""
    path = Path(path)
    if encoding is None:
        return detect_encoding(path)
    codec = check_encoding(encoding)
    if codec == "utf-8":
        codec = "utf-8-sig"  # the BOM Excel writes is not part of the first cell
    problem = _first_problem(path, codec)
    if problem is not None:
        offset, kind, reason = problem
        what = "a NUL byte: binary content, not text" if kind == "nul" else reason
        raise TextFileError(
            path,
            f"not {encoding} text: {_where(path, offset, codec)}: {what}; check --encoding "
            f"(without it govbus reads UTF-8 and GB18030/GBK)",
        )
    return codec


def open_text(
    path: str | Path, encoding: str | None = None, *, newline: str | None = None
) -> TextIO:
    """Open ``path`` for reading as text in ``encoding`` (None: detected); decoding is strict."""
    path = Path(path)
    codec = resolve_encoding(path, encoding)
    return path.open(encoding=codec, newline=newline)


# --- scanning -----------------------------------------------------------------------------------


def _first_problem(path: Path, codec: str) -> tuple[int, str, str] | None:
    """(offset, "nul" or "decode", reason) of the first NUL character or undecodable bytes.

    The offset counts bytes from 0 for codecs that write NUL as one zero byte (UTF-8, GB18030,
    ...), characters otherwise (UTF-16, UTF-32).
    """
    decoder = codecs.getincrementaldecoder(codec)("strict")
    single_nul = _nul_is_one_byte(codec)
    consumed = 0  # bytes read before this chunk
    chars = 0  # characters decoded before this chunk
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # The decoder reports positions in its pending bytes followed by the chunk.
                offset = consumed - len(pending) + exc.start
                bad = exc.object[exc.start : exc.start + 4].hex(" ")
                return offset, "decode", f"bytes {bad}: {exc.reason}"
            nul = text.find("\x00")
            if nul >= 0:
                if single_nul:
                    return consumed - len(pending) + (pending + chunk).index(b"\x00"), "nul", ""
                return chars + nul, "nul", ""
            if not chunk:
                return None
            consumed += len(chunk)
            chars += len(text)


def _nul_is_one_byte(codec: str) -> bool:
    try:
        return b"a\x00".decode(codec) == "a\x00"
    except UnicodeDecodeError:
        return False


def _where(path: Path, offset: int, codec: str = "utf-8") -> str:
    """``byte 1234 (line 5)``: line numbers where a newline is one byte, as in UTF-8 and GBK."""
    if not _nul_is_one_byte(codec):
        return f"character {offset}"
    lines = 1
    left = offset
    with path.open("rb") as fh:
        while left > 0:
            chunk = fh.read(min(left, _CHUNK))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            left -= len(chunk)
    return f"byte {offset}, line {lines}"


def _binary(path: Path, offset: int) -> TextFileError:
    return TextFileError(
        path,
        f"binary content, not a text file: a NUL byte at {_where(path, offset)}; give a text "
        f"file (.csv, .jsonl), or if it is text in UTF-16 or another encoding, {ENCODING_HINT}",
    )
