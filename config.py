"""Where peek keeps its state, and the settings that every front door shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peek.errors import PeekError

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
MAX_FILE_BYTES_LIMIT = 1 << 32
DB_FILENAME = "peek.db"


def max_file_bytes() -> int:
    """The one size cap for every read (index, tools, citations): PEEK_MAX_FILE_BYTES or 1 MiB."""
    from peek.errors import ConfigError

    raw = os.environ.get("PEEK_MAX_FILE_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_FILE_BYTES
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_FILE_BYTES_LIMIT:
        raise ConfigError(
            f"PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1 to "
            f"{MAX_FILE_BYTES_LIMIT}, got {raw[:40]!r}",
            "fix or unset it",
        )
    return int(raw)


def env_choice(var: str, choices: tuple[str, ...], default: str, what: str,
               error: type[PeekError]) -> str:
    """A setting naming one of a few choices (case-insensitive, default when unset or empty);
    anything else is a one-line error listing the choices."""
    name = os.environ.get(var, default).strip().lower() or default
    if name not in choices:
        raise error(f"unknown {what} {name!r} in {var}", f"use one of {', '.join(choices)}")
    return name


def default_home() -> Path:
    """The platform's user data dir, unless PEEK_HOME relocates everything peek writes."""
    env = os.environ.get("PEEK_HOME")
    if env is not None and env.strip():
        return _home_path(env, "PEEK_HOME")
    from platformdirs import user_data_dir

    return Path(user_data_dir("peek", appauthor=False))


def database_url() -> str | None:
    """PEEK_DATABASE_URL (set by `--db` too): a SQLAlchemy URL, or None for the home's file."""
    raw = os.environ.get("PEEK_DATABASE_URL", "").strip()
    return raw or None


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one peek home."""

    home: Path
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: a SQLAlchemy URL that overrides the home's SQLite file (credentials: never print it)
    database_url: str | None = None

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def store(self) -> Path | str:
        """What `open_database` opens: the URL when one is configured, else the home's file."""
        return self.database_url or self.db_path

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None,
             url: str | None = None) -> Settings:
        """Settings for an explicit home, else PEEK_HOME, else the platform default; the store
        is `url` when given, else PEEK_DATABASE_URL's, else the home's file."""
        root = _home_path(home, "--home") if home is not None else default_home()
        return cls(home=root, max_file_bytes=max_file_bytes(),
                   database_url=url or database_url())


def _home_path(value: str | os.PathLike[str], name: str) -> Path:
    """A home path that can be a folder: refuse NUL bytes and paths naming a file."""
    from peek.errors import ConfigError

    text = os.fspath(value)
    if "\0" in text:
        raise ConfigError(f"{name} contains a NUL byte", "give a folder path")
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} {path} is a file, not a folder", "give a folder for its state")
    return path
