"""Shared fixtures: an isolated PEEK_HOME and a builder for small real corpora."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import write_tree

from peek.db import Database
from peek.retrieval.indexer import index_corpus
from peek.service import Peek


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh peek home; PEEK_HOME points at it so nothing leaks into the user's data dir."""
    folder = tmp_path / "peek-home"
    monkeypatch.setenv("PEEK_HOME", str(folder))
    return folder


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Write a dict of relative path → content into a new folder and return its root."""
    counter = iter(range(1000))

    def build(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / f"corpus{next(counter)}"
        root.mkdir()
        return write_tree(root, files)

    return build


@pytest.fixture
def index_unseeded(
    make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path
) -> Iterator[Callable[[dict[str, str | bytes]], tuple[Database, int, Path]]]:
    """Index a corpus without seeding its map, for tests that start from an empty map."""
    opened: list[Peek] = []

    def build(files: dict[str, str | bytes]) -> tuple[Database, int, Path]:
        service = Peek(make_corpus(files), tmp_path / "home")
        index_corpus(service.db, service.root, service.settings.max_file_bytes)
        opened.append(service)
        return service.db, service.corpus_id, service.root

    yield build
    for service in opened:
        service.close()
