"""Reading corpus files safely: size and type checked on the open descriptor, UTF-8 decoded."""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass

from .errors import SandboxError
from .paths import special_kind

BINARY_SNIFF_BYTES = 8192
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True)
class DecodedText:
    """A file's text plus how many invalid UTF-8 sequences were replaced with U+FFFD."""

    text: str
    decode_errors: int


def read_bytes(path: str | os.PathLike[str], max_bytes: int, display: str) -> bytes:
    """Read a regular file of at most `max_bytes`, re-checking its type on the open descriptor."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise SandboxError(f"cannot open {display!r} ({err.strerror}); pick another file") from err
    try:
        _check_descriptor(fd, max_bytes, display)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes)
    finally:
        os.close(fd)


def looks_binary(data: bytes) -> bool:
    """Treat a NUL byte near the start as binary, the same rule git and ripgrep use."""
    return b"\0" in data[:BINARY_SNIFF_BYTES]


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


def _check_descriptor(fd: int, max_bytes: int, display: str) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise SandboxError(f"{display!r} is a {special_kind(info.st_mode)}, not a regular file")
    if info.st_size > max_bytes:
        raise SandboxError(
            f"{display!r} is {info.st_size} bytes, over the {max_bytes}-byte read limit; "
            "use grep or find_symbol to locate what you need in smaller files"
        )
