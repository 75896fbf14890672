"""The README documents every CLI command, every option and every PEEK_* setting peek reads.

The command tree is the real typer app's (as `peek --help` builds it); the settings are every
`"PEEK_..."` string literal in the package's source. A new command, option or variable fails
here until the README names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer

from peek.cli.app import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
NOT_SOURCE = {".venv", "tests", "benchmarks", "build", ".git"}


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every command path below `peek` ('map pin', 'memory search', ...) and its click object."""
    def walk(cmd: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
        if path:
            yield " ".join(path), cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


COMMANDS = dict(commands())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_in_the_readme(name: str) -> None:
    last = name.split()[-1]  # the map paragraph lists its subcommands as `diff PATH V1 V2`, ...
    assert f"peek {name}" in README or f"`{last} PATH" in README, (
        f"README never shows `peek {name}`")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_in_the_readme(name: str) -> None:
    for param in COMMANDS[name].params:
        if not isinstance(param, click.Option):
            continue
        names = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
        if names == ["--help"] or not names:
            continue
        assert any(re.search(re.escape(o) + r"\b", README) for o in names), (
            f"README never mentions {' / '.join(names)} of `peek {name}`")


def settings_read() -> set[str]:
    """Every PEEK_* variable named as a string literal in the package's own source."""
    found: set[str] = set()
    for path in REPO.rglob("*.py"):
        if NOT_SOURCE.intersection(path.relative_to(REPO).parts):
            continue
        found |= set(re.findall(r"[\"'](PEEK_[A-Z0-9_]+)[\"']", path.read_text("utf-8")))
    return found


def test_every_setting_is_in_the_readme() -> None:
    found = settings_read()
    assert {"PEEK_HOME", "PEEK_MAX_FILE_BYTES", "PEEK_ROOTS"} <= found  # the scan works
    missing = sorted(v for v in found if v not in README)
    assert not missing, f"README never mentions {missing}"


def test_every_benchmark_is_in_the_readme() -> None:
    """Each script under benchmarks/ says in the README how to run it."""
    scripts = sorted(p.name for p in (REPO / "benchmarks").glob("*_bench.py"))
    assert scripts and not [s for s in scripts if s not in README]
