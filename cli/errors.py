"""How the CLI reports failures: one line on stderr, a non-zero exit code, no traceback."""

from __future__ import annotations

import sys

import typer

USAGE_EXIT = 2


def run_guarded(app: typer.Typer) -> int:
    """Run the typer app; map peek's, the sandbox's and usage errors to `peek: error: ...`."""
    from peek.errors import PeekError

    try:
        returned = app(standalone_mode=False)
    except PeekError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001 - the known families below get one line too
        return _known(exc)
    return _exit_code(returned)


def _interrupted() -> int:
    return _fail("interrupted; nothing was lost (every write is one transaction)", 130)


def _exit_code(returned: object) -> int:
    """The code typer hands back instead of raising, not success: a command's `typer.Exit`
    (serve-model's failed server) or 130 for a Ctrl-C it caught (typer turns that into Exit)."""
    if isinstance(returned, bool) or not isinstance(returned, int):
        return 0  # a command's own return value (None)
    return _interrupted() if returned == 130 else returned


def click_kind(exc: BaseException) -> str | None:
    """The click exception family of `exc`, whether from click or the copy typer bundles."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    for kind in ("NoArgsIsHelpError", "UsageError", "Exit", "Abort", "ClickException"):
        if kind in names:
            return kind
    return None


def _known(exc: Exception) -> int:
    from peek.sandbox import SandboxError

    kind = click_kind(exc)
    if kind is not None:
        return _click(exc, kind)
    if isinstance(exc, SandboxError):
        return _fail(str(exc), 2)
    if _is_busy(exc):
        return _fail(store_trouble(exc), 3)
    if isinstance(exc, UnicodeEncodeError):
        return _fail(not_utf8(exc), USAGE_EXIT)
    if isinstance(exc, OverflowError):
        return _fail(out_of_range(exc), USAGE_EXIT)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", USAGE_EXIT)
    return _unexpected(exc)


def store_trouble(exc: Exception) -> str:
    """A store that cannot take a write: full or read-only is no reason to try again."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).lower()
    if "disk is full" in text or "no space" in text:
        return (f"the store's disk is full ({cause}) (free some space, or set PEEK_HOME to a "
                "folder on another disk; the store stays consistent)")
    if "disk i/o error" in text:
        return (f"the store could not be written ({cause}) (check that its disk has space and "
                "its folder is writable, or set PEEK_HOME to another folder; the store stays "
                "consistent)")
    if "readonly" in text or "read-only" in text:
        return (f"the store is read-only ({cause}) (make the peek home writable, or set "
                "PEEK_HOME to another folder)")
    return f"the store is busy or unavailable: {cause}; try again"


def out_of_range(exc: OverflowError) -> str:
    """A number too large for the store or a bound (a line number of 10**20)."""
    return f"a number is out of range ({exc}); use a smaller value"


def not_utf8(exc: UnicodeEncodeError) -> str:
    """Text that held bytes that are not UTF-8 (a terminal in another encoding)."""
    return (f"{exc.object[max(0, exc.start - 20):exc.end + 20]!r} is not UTF-8 text; nothing "
            "was written (use UTF-8 text and names, e.g. a UTF-8 locale)")


def _unexpected(exc: Exception) -> int:
    """A bug, not a usage error: still one line, with the traceback only when asked for."""
    import os
    import traceback

    if os.environ.get("PEEK_DEBUG"):
        traceback.print_exception(exc)
    return _fail(f"unexpected error ({type(exc).__name__}): {exc} (PEEK_DEBUG=1 shows where)", 1)


def _click(exc: Exception, kind: str) -> int:
    code = int(getattr(exc, "exit_code", USAGE_EXIT) or 0)
    if kind == "Exit":
        return code
    if kind == "Abort":
        return _fail("aborted", 1)
    if kind == "NoArgsIsHelpError":
        exc.show()  # type: ignore[attr-defined]
        return code
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    if kind == "UsageError":
        return _fail(f"{message} (see: {_help_command(getattr(exc, 'ctx', None))})", USAGE_EXIT)
    return _fail(message, code or 1)


def _help_command(ctx: object) -> str:
    """`peek SUB --help` for the command that failed, named the way a person typed it."""
    names: list[str] = []
    while ctx is not None and getattr(ctx, "parent", None) is not None:
        command = getattr(ctx, "command", None)
        names.append(str(getattr(command, "name", "") or ""))
        ctx = getattr(ctx, "parent", None)
    return " ".join(["peek", *reversed([n for n in names if n]), "--help"])


def _is_busy(exc: Exception) -> bool:
    """A SQLAlchemy (or PostgreSQL driver) OperationalError, checked without importing either
    when it never loaded."""
    if "psycopg" in sys.modules:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return True
    if "sqlite3" in sys.modules:  # the raw path (Database.query/raw_write) raises sqlite3's own
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError):
            return True
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError)


def _fail(message: str, code: int) -> int:
    from peek.cli.terminal import escape_controls

    sys.stderr.write(f"peek: error: {escape_controls(' '.join(message.split()))}\n")
    return code
