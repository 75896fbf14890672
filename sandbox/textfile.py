"""Reading corpus files as text: UTF-8 decoded leniently, lines split as editors count them."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class DecodedText:
    """A file's text plus how many invalid UTF-8 sequences were replaced with U+FFFD."""

    text: str
    decode_errors: int


def decode_utf8(data: bytes) -> DecodedText:
    """Decode leniently so one bad byte never hides a whole file, and count what was replaced."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    return DecodedText(text, replaced)


def split_lines(text: str) -> list[str]:
    """Split on newline only, like ripgrep and editors count lines; keep any trailing CR."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
