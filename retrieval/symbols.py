"""Definitions from the index's symbols table, so find_symbol needs no scan of the tree."""

from __future__ import annotations

from sqlalchemy import or_, select

from peek.db import Database
from peek.sandbox.results import SymbolHit
from peek.schema import File, Symbol

MAX_SYMBOL_HITS = 200


def lookup_symbols(
    db: Database, corpus_id: int, name: str, limit: int = MAX_SYMBOL_HITS
) -> list[SymbolHit]:
    """Definitions whose name or qualified name (`Class.method`) is `name`, in path order."""
    wanted = name.strip()
    query = (
        select(File.path, Symbol.qualname, Symbol.kind, Symbol.start_line, Symbol.end_line)
        .join(File, File.id == Symbol.file_id)
        .where(File.corpus_id == corpus_id, or_(Symbol.name == wanted, Symbol.qualname == wanted))
        .order_by(File.path, Symbol.start_line)
        .limit(limit)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [SymbolHit(*row) for row in rows]
