"""Text from a corpus, a log or a model is untrusted: on a terminal its control characters are
shown escaped, never obeyed (a file holding `ESC]0;…BEL` must not retitle or drive the terminal).

Only a terminal gets this: a pipe or a file still receives the exact bytes. The escape is JSON's
`\\u001b` form, so `--json` printed to a terminal stays valid JSON with the same values.
"""

from __future__ import annotations

import errno
import re
import sys
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, and C1 controls (0x9b is an 8-bit CSI on some terminals)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Control characters (tab and newline aside) as visible `\\u00XX` escapes."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class TerminalOut:
    """A stdout on a terminal that escapes control characters in what the CLI prints."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write the text with its control characters escaped."""
        return self._stream.write(escape_controls(text))

    def writelines(self, lines: Any) -> None:
        """Each line as `write` would."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # flush, isatty, buffer (raw bytes: MCP), encoding


class ClosedOut:
    """Stands in for a stdout the caller closed (`peek ... >&-`), where Python has none: the
    first print is a one-line error instead of vanishing (text) or an AttributeError (JSON)."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        """Refuse: there is nowhere to print."""
        raise OSError(errno.EBADF, "cannot print the result: standard output is closed (run "
                      "it with stdout open, e.g. > /dev/null)")

    def flush(self) -> None:
        """Nothing is ever buffered."""

    def isatty(self) -> bool:
        """Not a terminal."""
        return False

    @property
    def buffer(self) -> Any:
        """Raw bytes (MCP over stdio) have nowhere to go either."""
        return self.write("")


class ClosedIn:
    """Stands in for a stdin the caller closed (`peek record -t - <&-`): reading it is a
    one-line error instead of an AttributeError."""

    def read(self, size: int = -1) -> str:
        """Refuse: there is nothing to read."""
        raise OSError(errno.EBADF, "cannot read standard input: it is closed (pipe the input "
                      "in, or give a file instead of '-')")

    def isatty(self) -> bool:
        """Not a terminal."""
        return False

    @property
    def buffer(self) -> Any:
        """Raw bytes have no source either."""
        return self.read()


def guard_stdin() -> None:
    """A closed stdin fails on the first read, with one line."""
    if sys.stdin is None:
        sys.stdin = ClosedIn()  # type: ignore[assignment]


def guard_stdout() -> None:
    """Escape control characters in everything printed to stdout, when stdout is a terminal;
    a closed stdout fails on the first print."""
    if sys.stdout is None:
        sys.stdout = ClosedOut()  # type: ignore[assignment]
        return
    if sys.stdout.isatty() and not isinstance(sys.stdout, TerminalOut):
        sys.stdout = TerminalOut(sys.stdout)  # type: ignore[assignment]
