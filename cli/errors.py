"""How the CLI reports failures: one line on stderr, a non-zero exit code, no traceback."""

from __future__ import annotations

import sys

import typer


def run_guarded(app: typer.Typer) -> int:
    """Run the typer app; map peek's and the sandbox's errors to `peek: error: ...` and exit 2."""
    from peek.errors import PeekError

    try:
        app(standalone_mode=False)
    except PeekError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was lost (every write is one transaction)", 130)
    except Exception as exc:  # noqa: BLE001 - the known families below get one line too
        return _known(exc)
    return 0


def _known(exc: Exception) -> int:
    import click

    if isinstance(exc, click.exceptions.Exit):
        return int(exc.exit_code)
    if isinstance(exc, click.ClickException):
        exc.show()
        return int(exc.exit_code)
    if isinstance(exc, click.exceptions.Abort):
        return _fail("aborted", 1)
    from peek.sandbox import SandboxError

    if isinstance(exc, SandboxError):
        return _fail(str(exc), 2)
    if _is_busy(exc):
        return _fail(f"the store is busy or unavailable: {getattr(exc, 'orig', exc)}; try again",
                     3)
    raise exc


def _is_busy(exc: Exception) -> bool:
    """A SQLAlchemy OperationalError, checked without importing SQLAlchemy when it never loaded."""
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"peek: error: {message}\n")
    return code
