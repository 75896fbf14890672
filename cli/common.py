"""What every `peek` command group shares: the corpus argument, --home, --json, JSON output,
opening the service, and the one grammar (`peek GROUP COMMAND CORPUS [ARGS] [OPTIONS]`).

`peek map pin PATH ID`, `peek memory ingest PATH FILE`: the command, then the corpus, then what
the command takes. `peek map PATH` and `peek memory PATH` alone show the corpus's map or memory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from peek.service import Peek

CorpusArg = Annotated[Path, typer.Argument(help="The corpus: a repository or a folder.")]
HomeOpt = Annotated[Path | None, typer.Option(
    "--home", help="Where peek keeps its state (default: $PEEK_HOME or the user data dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit(payload: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def open_peek(path: Path, home: Path | None) -> Peek:
    """The service for a corpus path and home, imported lazily to keep `--help` fast."""
    from peek.service import Peek

    return Peek(path, home)


@contextmanager
def opened(path: Path, home: Path | None) -> Iterator[tuple[Peek, int]]:
    """The service and corpus id for an indexed corpus; the store is closed afterwards."""
    with open_peek(path, home) as peek:
        yield peek, peek.corpus_id


class CorpusGroup(TyperGroup):
    """A group whose first word may be a corpus: `peek map PATH` runs `show` on it.

    With `corpus_first_deprecated`, the old order `peek memory PATH COMMAND ...` still works:
    it is rewritten to `peek memory COMMAND PATH ...` with one deprecation line on stderr.
    """

    corpus_first_deprecated = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Route a leading corpus path to `show`, or reorder the deprecated corpus-first form."""
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            if self.corpus_first_deprecated and len(args) > 1 and args[1] in self.commands:
                group = ctx.command_path or "peek"
                print(f"peek: deprecated: `{group} PATH {args[1]}` is now "
                      f"`{group} {args[1]} PATH`", file=sys.stderr)
                args = [args[1], args[0], *args[2:]]
            else:
                args = ["show", *args]
        return super().parse_args(ctx, args)


def command_group(name: str, help: str, cls: type[CorpusGroup] = CorpusGroup) -> typer.Typer:
    """A `peek GROUP` sub-app with the one grammar and peek's plain help and error handling."""
    return typer.Typer(name=name, cls=cls, help=help, rich_markup_mode=None,
                       no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)
