"""The import/reference graph and PageRank that rank files and symbols for the map's bootstrap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from peek.retrieval.graph import (
    MAX_DEFS,
    FileRow,
    ModuleResolver,
    SymbolRow,
    build_graph,
    graph_stamp,
    load_graph,
    load_saved_graph,
    name_shape,
)
from peek.service import Peek


def row(i: int, path: str, imports: str = "", identifiers: str = "",
        language: str = "python") -> FileRow:
    return FileRow(i, path, language, imports, identifiers)


def sym(file_id: int, name: str, qualname: str | None = None, kind: str = "function") -> SymbolRow:
    return SymbolRow(file_id, name, qualname or name, kind, 1, 2)


def test_module_resolution_for_python_js_and_go() -> None:
    paths = ["pkg/__init__.py", "pkg/core.py", "pkg/sub/x.py", "pkg/util.py", "src/lib/mod.py",
             "web/app.js", "web/router.js", "shared/x/index.js", "internal/store/db.go",
             "internal/store/tx.go"]
    r = ModuleResolver(paths)
    py = row(0, "pkg/sub/x.py")
    resolved = {m: [paths[i] for i in r.resolve(m, py)] for m in (
        "..core", ".", "pkg.util.helper", "pkg", "lib.mod", "os", "numpy.linalg")}
    assert resolved == {"..core": ["pkg/core.py"], ".": [], "pkg.util.helper": ["pkg/util.py"],
                        "pkg": ["pkg/__init__.py"], "lib.mod": ["src/lib/mod.py"], "os": [],
                        "numpy.linalg": []}
    assert [paths[i] for i in r.resolve(".core", row(0, "pkg/__init__.py"))] == ["pkg/core.py"]
    js = row(5, "web/app.js", language="javascript")
    assert [paths[i] for i in r.resolve("./router", js)] == ["web/router.js"]
    assert [paths[i] for i in r.resolve("../shared/x", js)] == ["shared/x/index.js"]
    assert r.resolve("react", js) == []
    go = row(8, "cmd/main.go", language="go")
    assert sorted(paths[i] for i in r.resolve("github.com/acme/tool/internal/store", go)) == [
        "internal/store/db.go", "internal/store/tx.go"]


def edge_weights(graph) -> dict[tuple[str, str], float]:
    return {(graph.paths[s], graph.paths[d]): w
            for s, d, w in zip(graph.src.tolist(), graph.dst.tolist(), graph.weight.tolist(),
                               strict=True)}


def test_rare_names_weigh_more_and_ubiquitous_definitions_are_skipped() -> None:
    files = [row(0, "a.py", identifiers="fetch parse_config_file")]
    files += [row(i, f"user{i}.py", identifiers="fetch") for i in range(1, 9)]
    files += [row(9, "getter.py"), row(10, "config.py")]
    files += [row(11 + i, f"dup{i}.py") for i in range(MAX_DEFS + 1)]
    files += [row(30, "caller.py", identifiers="run strip config")]
    symbols = [sym(9, "fetch"), sym(10, "parse_config_file"), sym(9, "strip"), sym(9, "config")]
    symbols += [sym(11 + i, "run", f"Job{i}.run", "method") for i in range(MAX_DEFS + 1)]
    weights = edge_weights(build_graph(files, symbols))
    assert weights[("a.py", "config.py")] > weights[("a.py", "getter.py")] > 0
    # `run` is defined in too many files, `strip` is a str method, `config` a module name
    assert not any(src == "caller.py" for src, _ in weights)
    assert name_shape("parse_config_file") == 2.0 and name_shape("_private") == 0.1
    assert name_shape("HTTPAdapter") == 2.0 and name_shape("get") == 1.0


def test_members_weigh_a_tenth_of_top_level_definitions() -> None:
    files = [row(0, "a.py", identifiers="resolve_redirects"), row(1, "b.py"),
             row(2, "c.py", identifiers="load_settings"), row(3, "d.py")]
    symbols = [sym(1, "resolve_redirects", "Session.resolve_redirects", "method"),
               sym(3, "load_settings")]
    weights = edge_weights(build_graph(files, symbols))
    assert weights[("a.py", "b.py")] == pytest.approx(weights[("c.py", "d.py")] / 10)


def star() -> tuple[list[FileRow], list[SymbolRow]]:
    """Five files that all import hub.py, which defines Hub; leaf.py is imported by one."""
    files = [row(0, "hub.py"), row(1, "leaf.py")]
    files += [row(2 + i, f"u{i}.py", imports="hub", identifiers="Hub") for i in range(5)]
    files[2] = row(2, "u0.py", imports="hub\nleaf", identifiers="Hub")
    return files, [sym(0, "Hub", kind="class"), sym(0, "helper"), sym(1, "Leaf", kind="class")]


def test_pagerank_is_a_distribution_with_the_hub_first() -> None:
    graph = build_graph(*star())
    ranks = graph.pagerank()
    assert sum(ranks.values()) == pytest.approx(1.0)
    assert max(ranks, key=lambda p: ranks[p]) == "hub.py"
    assert ranks["leaf.py"] > ranks["u1.py"]
    assert graph.top_files(2) == sorted(ranks.items(), key=lambda kv: -kv[1])[:2]
    assert graph.in_degree()["hub.py"] == 5


def test_personalized_pagerank_follows_the_graph_from_the_seeds() -> None:
    graph = build_graph(*star())
    plain = graph.pagerank()
    seeded = graph.pagerank({"u0.py": 1.0, "not/in/corpus.py": 5.0})
    assert sum(seeded.values()) == pytest.approx(1.0)
    assert seeded["leaf.py"] > plain["leaf.py"] and seeded["u3.py"] < plain["u3.py"]
    assert graph.pagerank({"u0.py": 0.0}) == pytest.approx(plain)


def test_top_symbols_are_the_names_other_files_use() -> None:
    top = build_graph(*star()).top_symbols(5)
    assert [(s.path, s.name) for s in top] == [("hub.py", "Hub")]
    assert top[0].score > 0


def test_empty_graph() -> None:
    graph = build_graph([], [])
    assert graph.pagerank() == {} and graph.top_symbols() == [] and len(graph.ranks()) == 0


def test_load_graph_reads_an_indexed_corpus(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({
        "app/__init__.py": "",
        "app/models.py": "class UserRecord:\n    pass\n",
        "app/views.py": "from .models import UserRecord\n\n\ndef show():\n    return UserRecord()",
        "app/api.py": "from app.models import UserRecord\n\n\ndef get():\n    return UserRecord()",
    })
    service = Peek(root, tmp_path / "home")
    service.index()
    with service.db.read() as conn:
        graph = load_graph(conn, service.corpus_id)
    service.close()
    weights = edge_weights(graph)
    assert {("app/views.py", "app/models.py"), ("app/api.py", "app/models.py")} <= set(weights)
    assert graph.top_files(1)[0][0] == "app/models.py"
    assert graph.top_symbols(1)[0].name == "UserRecord"


def test_graph_at_the_scale_of_a_large_repository() -> None:
    rng = np.random.default_rng(0)
    n, names = 1500, [f"name_{i}" for i in range(6000)]
    files = [row(i, f"pkg/m{i}.py", imports=f"pkg.m{(i * 7) % n}",
                 identifiers=" ".join(names[j] for j in rng.choice(6000, 80, replace=False)))
             for i in range(n)]
    symbols = [sym(i % n, name) for i, name in enumerate(names)]
    graph = build_graph(files, symbols)
    ranks = graph.ranks()
    assert len(ranks) == n and ranks.sum() == pytest.approx(1.0)
    assert len(graph.top_symbols(20, ranks)) == 20


def test_the_index_saves_the_graph_and_updates_it_when_files_change(make_corpus,
                                                                    tmp_path: Path) -> None:
    root = make_corpus({
        "app/__init__.py": "",
        "app/models.py": "class UserRecord:\n    pass\n",
        "app/views.py": "from .models import UserRecord\n\n\ndef show():\n    return UserRecord()",
    })
    service = Peek(root, tmp_path / "home")
    service.index()
    with service.db.query() as conn:
        saved = load_saved_graph(conn, service.corpus_id)
        built = load_graph(conn, service.corpus_id)
        stamp = graph_stamp(conn, service.corpus_id)
    assert saved.paths == built.paths and edge_weights(saved) == edge_weights(built)
    assert saved.pagerank() == pytest.approx(built.pagerank())
    seeded = {"app/views.py": 1.0}
    assert saved.pagerank(seeded) == pytest.approx(built.pagerank(seeded))
    service.index()  # nothing changed: the saved graph stays
    with service.db.query() as conn:
        assert graph_stamp(conn, service.corpus_id) == stamp
    (root / "app/api.py").write_text("from app.models import UserRecord\n")
    service.index()
    graph = service.graph()
    service.close()
    assert ("app/api.py", "app/models.py") in edge_weights(graph)
