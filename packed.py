"""JSON packed for BLOB columns: deflate with a preset dictionary, so small records shrink too.

A stored record is one format byte and a raw deflate stream. Format 1 primes the stream with
`_DICTIONARY_1`, the keys and phrases that sessions, results and memory nodes repeat, which is
what makes a 300-byte record compress as well as a long one. The dictionary of a format never
changes (stored records depend on it byte for byte); a better one would be format 2.
Works the same on SQLite and PostgreSQL (a BLOB or BYTEA column).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from peek.errors import StoreError

_FORMAT_1 = 1
_RESTORE = "restore the store from a backup"
_DICTIONARY_1 = (
    b'"stale":true "folded": "current_name":"" "name_history":{"" "entity_ids":["e0" "kind":"time"'
    b' "kind":"file" "kind":"symbol" "kind":"config" "kind":"agent" "name":"agent"'
    b' "role":"assistant" "role":"cited symbol" "role":"config key" "role":"edited file"'
    b' "role":"read file, search hit, cited file" "states":["lines  "succeeded"'
    b' {"id":"v0q0","text":"Who read it?","answers":["e0"] "What was read?"'
    b' "Who searched?" "What was searched for?" "What was found?" "Who edited it?"'
    b' "What was edited?" "Who answered?" "What was asked?" "What was answered?"'
    b' "What does the answer cite?" {"text":"When?","answers":["t0"] "phrase":"read"'
    b' "phrase":"searched" "phrase":"edited" "phrase":"answered" "answers":["TEXT:'
    b' {"tool":"search","args":{"query":" {"tool":"read","args":{"path":" "start":'
    b' "end": "paths":[" "ok":true,"output":" "thought":"" "outcome":{"edited_files":[],'
    b'"success":null} "answer":" "citations":[{"path":" "start_line": "end_line":'
    b' "tokens":{"input":0,"output":0},"cost_usd":null,"model":"offline","session":"'
    b' "map_version": "stopped_by":null "steps": "question":" .py"'
    b' "seq": "source":"session: "blobs":{"'
)


def pack_json(value: Any) -> bytes:
    """A JSON-serializable value as a packed record."""
    return pack_text(json.dumps(value, separators=(",", ":")))


def pack_text(text: str) -> bytes:
    """JSON text (or any text) as a packed record."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zdict=_DICTIONARY_1)
    return bytes([_FORMAT_1]) + packer.compress(text.encode("utf-8")) + packer.flush()


def unpack_text(record: bytes | memoryview) -> str:
    """The text of a packed record; a damaged one is a StoreError, never a wrong value.

    A raw deflate stream has no checksum, so a cut or padded one is caught by where it ends:
    the stream must end exactly at the record's last byte, and hold UTF-8."""
    data = bytes(record)
    if not data or data[0] != _FORMAT_1:
        raise StoreError("a stored record is damaged or from a newer peek (unknown format "
                         f"{data[:1].hex() or 'empty'})",
                         "restore the store from a backup, or upgrade peek if a newer one wrote it")
    try:
        unpacker = zlib.decompressobj(-15, zdict=_DICTIONARY_1)
        raw = unpacker.decompress(data[1:]) + unpacker.flush()
        if not unpacker.eof or unpacker.unused_data:
            raise StoreError("a stored record is damaged: its stream is cut short or padded",
                             _RESTORE)
        return raw.decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise StoreError(f"a stored record is damaged: {exc}", _RESTORE) from exc


def unpack_json(record: bytes | memoryview) -> Any:
    """The value of a packed JSON record."""
    try:
        return json.loads(unpack_text(record))
    except ValueError as exc:
        raise StoreError(f"a stored record is damaged: {exc}", _RESTORE) from exc
