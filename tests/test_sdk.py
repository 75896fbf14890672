"""The Python SDK: pinned public names, and the README's example run for real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import peek

PUBLIC = [
    "Anchor", "AppliedEdit", "AskResult", "BudgetError", "Budgets", "Citation", "CorpusError",
    "CorpusStatus", "EditRecord", "EntitySummary", "Entry", "EntryChange", "EntryNotFoundError",
    "EpisodeSummary", "FileGraph", "Forgotten", "ForgottenTurn", "Hit", "IndexStats",
    "MapError", "MapImportError", "MapView", "MemoryHit", "MemorySearch", "Model",
    "NotIndexedError", "OutcomeCorrection", "PastOutcome", "Peek", "PeekError", "QueryError",
    "Remembered", "ScriptedModel", "StoreError", "SymbolRow", "Trajectory", "TrajectoryError",
    "UpdateResult", "VersionError", "VersionRecord", "__version__",
]


def test_public_names_are_pinned() -> None:
    assert peek.__all__ == PUBLIC
    assert dir(peek) == sorted(PUBLIC)
    assert sorted(peek._EXPORTS) == [n for n in PUBLIC if n != "__version__"]
    for name in PUBLIC:
        assert getattr(peek, name) is not None


def test_every_public_name_and_method_is_in_the_sdk_reference() -> None:
    """Like the CLI's docs test: a new export or `Peek` method fails until the README's SDK
    reference names it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### SDK reference", 1)[1].split("\n## ", 1)[0]
    methods = [n for n in dir(peek.Peek) if not n.startswith("_")]
    missing = [n for n in [*PUBLIC, *methods] if not re.search(rf"`{n}[`(]", section)]
    assert not missing, f"README's SDK reference lacks: {missing}"


def test_import_peek_stays_light() -> None:
    code = "import sys, peek; print(sorted(m for m in ('litellm', 'langgraph', 'sqlalchemy') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def readme_sdk_example() -> str:
    """The ```python block under the README's 'Python SDK' heading."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Python SDK", 1)[1]
    return section.split("```python", 1)[1].split("```", 1)[0]


def test_readme_sdk_example_runs(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"shop/cart.py": "def add_item(cart, item):\n    cart.append(item)\n"})
    script = tmp_path / "example.py"
    script.write_text(readme_sdk_example())
    out = subprocess.run(
        [sys.executable, str(script), str(root), str(tmp_path / "home")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "shop/cart.py:1-2" in out.stdout


def test_sdk_map_operations_round_trip(make_corpus, tmp_path: Path) -> None:
    sdk = peek.Peek(make_corpus({"a.py": "def alpha():\n    return 1\n"}), tmp_path / "home")
    sdk.index()
    view = sdk.map()
    assert isinstance(view, peek.MapView) and view.version == 1
    entry = view.entries[0][0].id
    pinned = sdk.map_pin(entry)
    assert [e.pinned for e, _ in sdk.map().entries if e.id == entry] == [True]
    edited = sdk.map_edit(entry, "alpha lives in a.py")
    assert edited > pinned
    exported = sdk.map_export()
    sdk.map_reset()
    assert sdk.map().entries == ()
    sdk.map_import(__import__("json").dumps(exported))
    assert [e.text for e, _ in sdk.map().entries] == ["alpha lives in a.py"]
    assert [c.id for c in sdk.map_diff(edited, edited + 1)] == [entry]
    sdk.map_rollback(1)
    assert sdk.map().entries[0][0].text != "alpha lives in a.py"
    assert sdk.status().dirty is False


def test_peek_is_a_context_manager(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.py": "def frobnicate():\n    return 1\n"})
    with peek.Peek(root, tmp_path / "home") as service:
        service.index()
        assert service.search("frobnicate")
    assert "db" in service.__dict__  # opened inside, closed on exit (engine disposed)


def test_memory_listings_are_typed(make_corpus, tmp_path: Path) -> None:
    log = tmp_path / "talk.jsonl"
    log.write_text('{"id": "t1", "speaker": "Ada", "text": "The cart lives in shop/cart.py"}\n')
    with peek.Peek(make_corpus({"shop/cart.py": "x = 1\n"}), tmp_path / "home") as sdk:
        sdk.index()
        done = sdk.memory_ingest(log)
        assert isinstance(done, peek.Remembered) and done.added == 1
        episodes = sdk.memory_episodes()
        assert episodes and all(isinstance(e, peek.EpisodeSummary) for e in episodes)
        first = episodes[0]
        assert len(first.prefix_sha256) == 64 and first.to_dict()["id"] == first.id
        assert all(isinstance(e, peek.EntitySummary) for e in sdk.memory_entities())
        assert sdk.indexed
