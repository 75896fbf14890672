"""The file-level import/reference graph of a corpus, and PageRank over it (aider's repo map).

An edge A -> B means file A imports B's module or references a name that B defines. Reference
edges are weighted by specificity: a rare name (referenced by few files, defined in one) says
much more about a dependency than `get` or `name` does, so the weight is an idf of the name,
split over the files that define it, times a shape factor (long snake_case or CamelCase names
count double, private `_names` a tenth, as in aider). Members (methods, nested definitions) also
count a tenth: they are reached through attribute access (`x.items()`), which names no class.
Skipped names: those defined in more than `MAX_DEFS` files, builtins and methods of builtin
types (`list`, `strip`, `items`), standard-library and corpus module names (`re`, `core`: import
paths, already covered by import edges), and document headings. They carry almost no signal
about code dependencies, and the frequent ones would add edges quadratically.
PageRank runs in numpy (power iteration on the weighted edge list) and takes an optional
personalization vector, so search hits can be expanded along the graph.

The index saves the graph (edges, name references and the global PageRank) in `file_graphs`, as
raw arrays, in the same transaction as the files it describes; `load_saved_graph` reads it back
in milliseconds instead of rebuilding it from every file and symbol row in each process.
"""

from __future__ import annotations

import builtins
import posixpath
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from peek.db import driver

if TYPE_CHECKING:
    import sqlite3

    from peek.db import AnyConnection

MAX_DEFS = 8
IMPORT_WEIGHT = 2.0
DAMPING = 0.85
_JS_SUFFIXES = ("", ".js", ".ts", ".tsx", ".jsx", ".mjs", ".cjs", ".d.ts", "/index.js",
                "/index.ts", "/index.tsx", "/index.jsx")
_JS_LANGS = {"javascript", "typescript", "tsx", "jsx"}
_NOT_CODE = {"heading", "section"}
_BUILTINS = frozenset(
    dir(builtins) + [n for t in (str, bytes, list, dict, set, tuple, int, float) for n in dir(t)]
) | sys.stdlib_module_names
MEMBER_WEIGHT = 0.1

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class FileRow(NamedTuple):
    """What the graph needs from a `files` row."""

    id: int
    path: str
    language: str
    imports: str
    identifiers: str


class SymbolRow(NamedTuple):
    """What the graph needs from a `symbols` row."""

    file_id: int
    name: str
    qualname: str
    kind: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class RankedSymbol:
    """A definition ranked by how much PageRank flows to it through references to its name."""

    path: str
    name: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    score: float


def _empty_int() -> IntArray:
    return np.zeros(0, dtype=np.int64)


def _empty_float() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class FileGraph:
    """Files as nodes, aggregated weighted edges, and the name references behind them."""

    paths: list[str]
    src: IntArray = field(default_factory=_empty_int)
    dst: IntArray = field(default_factory=_empty_int)
    weight: FloatArray = field(default_factory=_empty_float)
    ref_src: IntArray = field(default_factory=_empty_int)
    ref_dst: IntArray = field(default_factory=_empty_int)
    ref_name: IntArray = field(default_factory=_empty_int)
    ref_weight: FloatArray = field(default_factory=_empty_float)
    names: list[str] = field(default_factory=list)
    symbols: list[tuple[int, SymbolRow]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = {p: i for i, p in enumerate(self.paths)}
        self.saved_ranks: FloatArray | None = None


    def __len__(self) -> int:
        return len(self.paths)

    def ranks(self, personalization: dict[str, float] | None = None,
              damping: float = DAMPING, tol: float = 1e-10, max_iter: int = 100) -> FloatArray:
        """PageRank per node index (sums to 1); dangling mass follows the personalization."""
        n = len(self.paths)
        if n == 0:
            return _empty_float()
        plain = not personalization or not any(w > 0 for w in personalization.values())
        if plain and self.saved_ranks is not None and damping == DAMPING:
            return self.saved_ranks.copy()
        p = self._teleport(personalization)
        out = np.bincount(self.src, weights=self.weight, minlength=n)
        share = self.weight / out[self.src] if len(self.src) else self.weight
        dangling = out == 0
        r = p.copy()
        for _ in range(max_iter):
            flow = np.bincount(self.dst, weights=share * r[self.src], minlength=n)
            new = damping * (flow + r[dangling].sum() * p) + (1 - damping) * p
            done = float(np.abs(new - r).sum()) < tol
            r = new
            if done:
                break
        return r / r.sum()

    def pagerank(self, personalization: dict[str, float] | None = None) -> dict[str, float]:
        """PageRank by path; personalization (path -> weight) biases it toward those files."""
        r = self.ranks(personalization)
        return {p: float(r[i]) for i, p in enumerate(self.paths)}

    def _teleport(self, personalization: dict[str, float] | None) -> FloatArray:
        n = len(self.paths)
        p = np.zeros(n, dtype=np.float64)
        for path, w in (personalization or {}).items():
            i = self.index.get(path)
            if i is not None and w > 0:
                p[i] += w
        total = p.sum()
        return p / total if total > 0 else np.full(n, 1.0 / n)

    def top_files(self, k: int, ranks: FloatArray | None = None) -> list[tuple[str, float]]:
        """The k highest-ranked files, ties broken by path."""
        r = self.ranks() if ranks is None else ranks
        order = sorted(range(len(self.paths)), key=lambda i: (-r[i], self.paths[i]))
        return [(self.paths[i], float(r[i])) for i in order[:k]]

    def in_degree(self) -> dict[str, int]:
        """How many distinct files point at each file (imports or references)."""
        counts = np.bincount(self.dst, minlength=len(self.paths))
        return {p: int(counts[i]) for i, p in enumerate(self.paths)}

    def symbol_scores(self, ranks: FloatArray | None = None) -> dict[tuple[int, int], float]:
        """Rank flowing to each (defining file, name): a file's rank split over its out-weight."""
        if not len(self.ref_src):
            return {}
        r = self.ranks() if ranks is None else ranks
        out = np.bincount(self.src, weights=self.weight, minlength=len(self.paths))
        contrib = r[self.ref_src] * self.ref_weight / out[self.ref_src]
        keys = self.ref_dst * len(self.names) + self.ref_name
        uniq, inverse = np.unique(keys, return_inverse=True)
        sums = np.bincount(inverse, weights=contrib)
        width = len(self.names)
        pairs = zip(uniq.tolist(), sums.tolist(), strict=True)
        return {(k // width, k % width): s for k, s in pairs}

    def top_symbols(self, k: int = 20, ranks: FloatArray | None = None) -> list[RankedSymbol]:
        """The k definitions other files lean on most, the outermost definition per name."""
        scores = self.symbol_scores(ranks)
        name_ids = {n: i for i, n in enumerate(self.names)}
        best: dict[tuple[int, int], SymbolRow] = {}
        for file_idx, sym in self.symbols:
            key = (file_idx, name_ids.get(sym.name, -1))
            if key in scores and (key not in best or _outer(sym, best[key])):
                best[key] = sym
        ranked = [RankedSymbol(self.paths[f], s.name, s.qualname, s.kind, s.start_line,
                               s.end_line, scores[(f, n)]) for (f, n), s in best.items()]
        ranked.sort(key=lambda s: (-s.score, s.path, s.start_line))
        return ranked[:k]


def _outer(a: SymbolRow, b: SymbolRow) -> bool:
    return (a.qualname.count("."), a.start_line) < (b.qualname.count("."), b.start_line)


def load_graph(conn: AnyConnection, corpus_id: int) -> FileGraph:
    """The graph of an indexed corpus, built from its files and symbols rows."""
    raw = driver(conn)
    files = [FileRow._make(r) for r in raw.execute(
        "SELECT id, path, language, imports, identifiers FROM files WHERE corpus_id = ? "
        "ORDER BY path", (corpus_id,))]
    symbols = [SymbolRow._make(r) for r in raw.execute(
        "SELECT s.file_id, s.name, s.qualname, s.kind, s.start_line, s.end_line FROM symbols s "
        "JOIN files f ON f.id = s.file_id WHERE f.corpus_id = ?", (corpus_id,))]
    return build_graph(files, symbols)


_ARRAYS = ("src", "dst", "weight", "ref_src", "ref_dst", "ref_name", "ref_weight")


def save_graph(conn: AnyConnection, corpus_id: int, graph: FileGraph) -> None:
    """Persist the graph and its global PageRank (replacing the corpus's previous one)."""
    import time

    blobs = [np.ascontiguousarray(getattr(graph, a)).tobytes() for a in _ARRAYS]
    driver(conn).execute(
        "INSERT OR REPLACE INTO file_graphs (corpus_id, built_at, paths, names, src, dst, "
        "weight, ref_src, ref_dst, ref_name, ref_weight, ranks) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (corpus_id, time.time(), "\n".join(graph.paths), "\n".join(graph.names), *blobs,
         graph.ranks().tobytes()))


def graph_stamp(conn: AnyConnection, corpus_id: int) -> float | None:
    """When the saved graph was built (None when there is none), for cache checks."""
    row = driver(conn).execute("SELECT built_at FROM file_graphs WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()
    return None if row is None else float(row[0])


def load_saved_graph(conn: AnyConnection, corpus_id: int) -> FileGraph:
    """The graph the last index saved (symbols left out); built from rows when none is saved."""
    raw = driver(conn)
    row = raw.execute(
        "SELECT paths, names, src, dst, weight, ref_src, ref_dst, ref_name, ref_weight, ranks "
        "FROM file_graphs WHERE corpus_id = ?", (corpus_id,)).fetchone()
    if row is None:
        return load_graph(raw, corpus_id)
    paths = row[0].split("\n") if row[0] else []
    names = row[1].split("\n") if row[1] else []
    src, dst, weight, ref_src, ref_dst, ref_name, ref_weight = row[2:9]
    graph = FileGraph(paths, _ints(src), _ints(dst), _floats(weight), _ints(ref_src),
                      _ints(ref_dst), _ints(ref_name), _floats(ref_weight), names)
    graph.saved_ranks = np.frombuffer(row[9], dtype=np.float64)
    return graph


def _ints(blob: bytes) -> IntArray:
    return np.frombuffer(blob, dtype=np.int64)


def _floats(blob: bytes) -> FloatArray:
    return np.frombuffer(blob, dtype=np.float64)


def refresh_saved_graph(conn: sqlite3.Connection, corpus_id: int) -> FileGraph:
    """Rebuild the graph from the rows just written and save it (called by the indexer)."""
    graph = load_graph(conn, corpus_id)
    save_graph(conn, corpus_id, graph)
    return graph


def build_graph(files: Sequence[FileRow], symbols: Iterable[SymbolRow]) -> FileGraph:
    """Build the graph from rows (pure, so it can be tested without a store)."""
    paths = [f.path for f in files]
    by_id = {f.id: i for i, f in enumerate(files)}
    sym_list = [(by_id[s.file_id], s) for s in symbols if s.file_id in by_id]
    imp_src, imp_dst, imp_w = _import_edges(files, paths)
    refs = _references(files, sym_list)
    src, dst, weight = _aggregate(np.concatenate([imp_src, refs.src]),
                                  np.concatenate([imp_dst, refs.dst]),
                                  np.concatenate([imp_w, refs.weight]), len(paths))
    return FileGraph(paths, src, dst, weight, refs.src, refs.dst, refs.name, refs.weight,
                     refs.names, sym_list)


def _import_edges(files: Sequence[FileRow], paths: list[str]) -> tuple[IntArray, IntArray,
                                                                         FloatArray]:
    """One edge per resolved import; a file's imports share IMPORT_WEIGHT per target."""
    resolver = ModuleResolver(paths)
    src: list[int] = []
    dst: list[int] = []
    w: list[float] = []
    for i, f in enumerate(files):
        targets = {t for m in f.imports.split("\n") if m for t in resolver.resolve(m, f)} - {i}
        for t in sorted(targets):
            src.append(i)
            dst.append(t)
            w.append(IMPORT_WEIGHT / len(targets))
    return (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64),
            np.asarray(w, dtype=np.float64))


def _aggregate(src: IntArray, dst: IntArray, w: FloatArray,
               n: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Sum parallel edges into one weighted edge per (src, dst)."""
    if not len(src):
        return _empty_int(), _empty_int(), _empty_float()
    uniq, inverse = np.unique(src * n + dst, return_inverse=True)
    weights = np.bincount(inverse, weights=w).astype(np.float64)
    return uniq // n, uniq % n, weights


def name_shape(name: str) -> float:
    """aider's shape factor: long compound identifiers are specific, private ones are not."""
    if name.startswith("_"):
        return 0.1
    camel = any(c.isupper() for c in name[1:]) and any(c.islower() for c in name)
    return 2.0 if ("_" in name or camel) and len(name) >= 8 else 1.0


@dataclass(frozen=True)
class _Refs:
    """Name references: one row per (referencing file, defining file, name)."""

    names: list[str]
    src: IntArray
    dst: IntArray
    name: IntArray
    weight: FloatArray


def _definitions(files: Sequence[FileRow], symbols: list[tuple[int, SymbolRow]],
                 ) -> tuple[list[str], list[list[int]], list[bool]]:
    """Linkable names, the files defining each, and whether any definition is top-level."""
    defs: dict[str, set[int]] = {}
    top_level: set[str] = set()
    skip = _BUILTINS | _module_names(f.path for f in files)
    for file_idx, sym in symbols:
        if sym.kind in _NOT_CODE or sym.name in skip:
            continue
        defs.setdefault(sym.name, set()).add(file_idx)
        if "." not in sym.qualname:
            top_level.add(sym.name)
    names = sorted(n for n, owners in defs.items() if len(owners) <= MAX_DEFS)
    return names, [sorted(defs[n]) for n in names], [n in top_level for n in names]


def _uses(files: Sequence[FileRow], index: dict[str, int]) -> tuple[IntArray, IntArray]:
    """(file, name id) for every file that mentions a linkable name."""
    use_f: list[int] = []
    use_n: list[int] = []
    for i, f in enumerate(files):
        for name in set(f.identifiers.split()):
            nid = index.get(name)
            if nid is not None:
                use_f.append(i)
                use_n.append(nid)
    return np.asarray(use_f, dtype=np.int64), np.asarray(use_n, dtype=np.int64)


def _references(files: Sequence[FileRow], symbols: list[tuple[int, SymbolRow]]) -> _Refs:
    """Reference rows with idf x shape x member weights, expanded over each name's definers."""
    names, owners, top = _definitions(files, symbols)
    uf, un = _uses(files, {n: i for i, n in enumerate(names)})
    if not len(uf):
        return _Refs(names, _empty_int(), _empty_int(), _empty_int(), _empty_float())
    n_owners = np.asarray([len(o) for o in owners], dtype=np.int64)
    shape = np.asarray([name_shape(n) * (1.0 if t else MEMBER_WEIGHT)
                        for n, t in zip(names, top, strict=True)])
    n_users = np.maximum(np.bincount(un, minlength=len(names)), 1)
    name_w = np.log1p(len(files) / n_users) * shape / n_owners
    counts = n_owners[un]
    rep_f, rep_n = np.repeat(uf, counts), np.repeat(un, counts)
    flat = np.asarray([o for group in owners for o in group], dtype=np.int64)
    first = np.cumsum(n_owners) - n_owners
    within = np.arange(len(rep_n)) - np.repeat(np.cumsum(counts) - counts, counts)
    rep_o = flat[first[rep_n] + within]
    keep = rep_f != rep_o
    return _Refs(names, rep_f[keep], rep_o[keep], rep_n[keep], name_w[rep_n[keep]])


def _module_names(paths: Iterable[str]) -> set[str]:
    """Folder and file stems, which appear as identifiers in import paths."""
    names: set[str] = set()
    for p in paths:
        parts = p.split("/")
        names.update(parts[:-1])
        names.add(parts[-1].split(".", 1)[0])
    return names


class ModuleResolver:
    """Maps an import string of a file to the corpus files it names (Python, JS/TS, Go, paths)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.by_path = {p: i for i, p in enumerate(paths)}
        self.modules: dict[str, int] = {}
        self.suffixes: dict[str, list[int]] = {}
        self.dirs: dict[str, list[int]] = {}
        for i, p in enumerate(paths):
            self.dirs.setdefault(posixpath.dirname(p), []).append(i)
            dotted = _python_module(p)
            if dotted is None:
                continue
            self.modules.setdefault(dotted, i)
            parts = dotted.split(".")
            for k in range(1, len(parts) - 1):
                self.suffixes.setdefault(".".join(parts[k:]), []).append(i)

    def resolve(self, module: str, owner: FileRow) -> list[int]:
        """Files an import names; [] for third-party or unresolvable imports."""
        if owner.language in _JS_LANGS or module.startswith(("./", "../", "/")):
            return self._relative_path(module, owner.path)
        if module.startswith("."):
            return self._python_relative(module, owner.path)
        found = self._dotted(module)
        return found if found else self._go_dir(module)

    def _dotted(self, module: str) -> list[int]:
        parts = module.split(".")
        for cut in (len(parts), len(parts) - 1):
            name = ".".join(parts[:cut])
            if cut and name in self.modules:
                return [self.modules[name]]
        hits = self.suffixes.get(module, [])
        return hits if len(hits) == 1 else []

    def _python_relative(self, module: str, owner: str) -> list[int]:
        level = len(module) - len(module.lstrip("."))
        package = posixpath.dirname(owner).split("/") if posixpath.dirname(owner) else []
        base = package[: len(package) - (level - 1)] if level > 1 else package
        rest = [p for p in module[level:].split(".") if p]
        target = ".".join(base + rest)
        if not rest:  # `from . import x`: the package itself, if it has an __init__
            return [self.modules[target]] if target in self.modules else []
        return self._dotted(target)

    def _relative_path(self, module: str, owner: str) -> list[int]:
        base = posixpath.normpath(posixpath.join(posixpath.dirname(owner), module)).lstrip("/")
        for suffix in _JS_SUFFIXES:
            hit = self.by_path.get(base + suffix)
            if hit is not None:
                return [hit]
        return []

    def _go_dir(self, module: str) -> list[int]:
        parts = module.strip("/").split("/")
        for k in range(len(parts)):
            hits = self.dirs.get("/".join(parts[k:]))
            if hits and len(parts) - k >= 1 and "/" in module:
                return hits
        return []


def _python_module(path: str) -> str | None:
    if not path.endswith((".py", ".pyi")):
        return None
    stem = path.rsplit(".", 1)[0]
    parts = stem.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)

