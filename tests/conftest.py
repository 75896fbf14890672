"""Shared fixtures: an isolated PEEK_HOME and a builder for small real corpora."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PEEK_BIN = Path(sys.executable).with_name("peek")


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
        for rel, content in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        return root

    return build


def run_peek(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed `peek` console script as a real subprocess."""
    return subprocess.run(
        [str(PEEK_BIN), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


SAMPLE = {
    "src/http/session.py": (
        '"""HTTP sessions."""\nimport os\nfrom .adapters import HTTPAdapter\n\n\n'
        "class Session:\n"
        '    """A session keeps cookies and follows redirects."""\n\n'
        "    def resolve_redirects(self, resp):\n"
        '        """Follow each redirect the server sends."""\n'
        "        while resp.is_redirect:\n"
        "            resp = self.send(resp.next)\n"
        "        return resp\n\n"
        "    def send(self, request):\n"
        "        return HTTPAdapter().send(request)\n"
    ),
    "src/http/adapters.py": (
        "class HTTPAdapter:\n"
        "    def send(self, request):\n"
        "        return request\n\n\n"
        "def getMaxRetries():\n"
        "    return 3\n"
    ),
    "docs/guide.md": "# Guide\n\nIntro text.\n\n## Redirects\n\nRedirects are followed by the session.\n",
    "README.txt": "A tiny sample corpus for tests.\n",
}
