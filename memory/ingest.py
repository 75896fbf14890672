"""Conversation logs and documents into memory: validate, then `remember` in one transaction.

A conversation log is JSON lines, one turn per line:
`{"id": str, "speaker": str, "text": str, "time": str|null, "session": str|null}`.
A document becomes one turn per paragraph (blank-line separated), its id `DOC:N` and its session
the document. Without a model the deterministic Operator extracts speakers and names; with one,
the LLM Operator runs first (outside the write transaction, so the store is never locked while
a model thinks) and its chunks are reconciled in order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from peek.errors import QueryError
from peek.memory.models import Turn
from peek.memory.pipeline import NewTurn, default_chunks, remember

if TYPE_CHECKING:
    from peek.db import Database
    from peek.llmjson import JSONModel
    from peek.memory.embed import Embedder
    from peek.memory.operator import Chunk
    from peek.memory.store import TurnRecord

_PARAGRAPH = re.compile(r"\n\s*\n")
TURN_CONTRACT = '{"id": str, "speaker": str, "text": str, "time": str|null, "session": str|null}'


def parse_turns(lines: list[str], source: str = "input") -> list[dict[str, Any]]:
    """JSON lines as turn dicts; a bad line is a QueryError that names it."""
    turns = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueryError(f"{source}:{number} is not valid JSON: {exc.msg}",
                             f"one turn per line: {TURN_CONTRACT}") from exc
        except RecursionError as exc:  # [[[[...]]]] deeper than the parser's stack
            raise QueryError(f"{source}:{number} is not valid JSON: nested too deeply",
                             f"one turn per line: {TURN_CONTRACT}") from exc
        if not isinstance(data, dict):
            raise QueryError(f"{source}:{number} is not a JSON object", TURN_CONTRACT)
        turns.append(data)
    return turns


def validate_turns(turns: list[dict[str, Any]]) -> list[Turn]:
    """Turns checked against the contract (QueryError naming the first bad one)."""
    out = []
    for i, raw in enumerate(turns, start=1):
        try:
            out.append(Turn.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(turn)"
            raise QueryError(f"turn {i}: {where}: {err['msg']}", TURN_CONTRACT) from exc
    return out


def ingest_turns(db: Database, corpus_id: int, turns: list[dict[str, Any]],
                 embedder: Embedder | None = None, model: JSONModel | None = None,
                 ) -> dict[str, int | bool]:
    """Remember conversation turns (already stored ids are skipped); returns the counts."""
    valid = validate_turns(turns)
    new = [NewTurn(t.id, t.speaker, t.text, t.time, t.session, "conversation") for t in valid]
    return _remember(db, corpus_id, new, embedder, model)


def document_turns(doc_id: str, text: str, time: str | None = None) -> list[NewTurn]:
    """A document as paragraph turns `doc_id:N`, in one session named after the document."""
    paragraphs = [" ".join(p.split()) for p in _PARAGRAPH.split(text) if p.strip()]
    return [NewTurn(f"{doc_id}:{i}", "", p, time, doc_id, "document")
            for i, p in enumerate(paragraphs, start=1)]


def ingest_documents(db: Database, corpus_id: int, documents: list[dict[str, Any]],
                     embedder: Embedder | None = None, model: JSONModel | None = None,
                     ) -> dict[str, int | bool]:
    """Remember documents `{"id", "text", "time"?}` paragraph by paragraph."""
    new: list[NewTurn] = []
    for doc in documents:
        if not str(doc.get("id", "")).strip() or not isinstance(doc.get("text"), str):
            raise QueryError("a document needs an 'id' and a 'text'", '{"id": str, "text": str}')
        new.extend(document_turns(str(doc["id"]), doc["text"], doc.get("time")))
    return _remember(db, corpus_id, new, embedder, model)


def ingest_file(db: Database, corpus_id: int, path: Path, embedder: Embedder | None = None,
                max_bytes: int | None = None) -> dict[str, int | bool]:
    """A .jsonl conversation log, or any other text file as one document (a document over
    `max_bytes`, the index's read cap, is refused)."""
    _check_ingestable(path, max_bytes)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"cannot read {path}: {exc}") from exc
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return ingest_turns(db, corpus_id, parse_turns(text.splitlines(), path.name), embedder)
    return ingest_documents(db, corpus_id, [{"id": path.name, "text": text}], embedder)


def _check_ingestable(path: Path, max_bytes: int | None) -> None:
    """Text only, and a document (not a .jsonl log) under the one read size cap, as the
    index reads files: a binary or huge file would become one useless memory turn."""
    from peek.blobs import SNIFF_BYTES, is_binary

    try:
        if not path.is_file():  # a pipe (/dev/stdin) is read once, below
            return
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        size = path.stat().st_size
    except OSError:
        return  # the read below names the problem
    if is_binary(head):
        raise QueryError(f"{path} looks binary (a NUL byte in its first 8 KiB)",
                         "ingest a .jsonl conversation log or a text document")
    if path.suffix.lower() not in (".jsonl", ".ndjson") and max_bytes is not None and (
            size > max_bytes):
        raise QueryError(f"{path} is {size} bytes, over the {max_bytes}-byte read limit",
                         "split it, or raise PEEK_MAX_FILE_BYTES")


def _remember(db: Database, corpus_id: int, new: list[NewTurn], embedder: Embedder | None,
              model: JSONModel | None) -> dict[str, int | bool]:
    chunks = default_chunks if model is None else _llm_chunks(new, model)
    with db.write() as conn:
        done = remember(conn, corpus_id, new, embedder=embedder, chunks=chunks, model=model)
    return done.to_dict()


def _llm_chunks(new: list[NewTurn], model: JSONModel) -> Any:
    """Run the LLM Operator per session now; the returned maker stamps the stored seq numbers."""
    from peek.memory.operator import LLMOperator

    operator = LLMOperator(model)
    sessions: dict[str, list[NewTurn]] = {}
    for turn in new:
        sessions.setdefault(turn.session or turn.turn_id, []).append(turn)
    extracted = {name: operator.document(name, _session_text(turns), 0, turns[0].time)
                 for name, turns in sessions.items()}

    def maker(records: list[TurnRecord]) -> list[Chunk]:
        """The extracted chunks of the sessions stored now, stamped with their seq."""
        first: dict[str, int] = {}
        for record in records:
            first.setdefault(record.session or record.turn_id, record.seq)
        out = []
        for name, chunks in extracted.items():
            for chunk in chunks if name in first else []:
                chunk.seq = first[name]
                _stamp(chunk)
                out.append(chunk)
        return out

    return maker


def _session_text(turns: list[NewTurn]) -> str:
    return "\n".join(t.embed_text() for t in turns)


def _stamp(chunk: Chunk) -> None:
    for entity in chunk.workspace.entities:
        entity.seq = chunk.seq
        for role in entity.roles:
            role.seq = chunk.seq
    for verb in chunk.workspace.verb_phrases:
        verb.seq = chunk.seq
    for node in chunk.workspace.space_time:
        node.seq = chunk.seq
