"""`peek migrate-store`: copy the store into another backend (SQLite <-> PostgreSQL)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from peek.cli.common import HomeOpt, JsonOpt


def migrate_store(
    to: Annotated[str, typer.Option("--to", help="The target store: postgresql+psycopg://USER@"
                                    "HOST/DB, sqlite:///FILE or a file path; must be empty.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy every corpus, index, map, session and memory of this store (--db or the home's
    file) into an empty store elsewhere; the source is left as it was."""
    from peek.config import Settings
    from peek.db import open_database
    from peek.storecopy import copy_store

    settings = Settings.load(home)
    source = open_database(settings.store)
    target = open_database(to if "://" in to else Path(to).expanduser().resolve())
    try:
        counts = copy_store(source, target)
    finally:
        source.close()
        target.close()
    if as_json:
        sys.stdout.write(json.dumps({"from": source.location, "to": target.location,
                                     "rows": counts}) + "\n")
        return
    print(f"copied {sum(counts.values())} rows from {source.location} to {target.location}")
    for name, n in counts.items():
        print(f"  {name:<18} {n}")
