"""Text from a corpus, a log or a model is untrusted: on a terminal its control characters are
shown escaped, never obeyed (a file holding `ESC]0;…BEL` must not retitle or drive the terminal).

Only a terminal gets this: a pipe or a file still receives the exact bytes. The escape is JSON's
`\\u001b` form, so `--json` printed to a terminal stays valid JSON with the same values.
"""

from __future__ import annotations

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


def guard_stdout() -> None:
    """Escape control characters in everything printed to stdout, when stdout is a terminal."""
    if sys.stdout is not None and sys.stdout.isatty() and not isinstance(sys.stdout, TerminalOut):
        sys.stdout = TerminalOut(sys.stdout)  # type: ignore[assignment]
