"""Where peek keeps its state, and the settings that every front door shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
DB_FILENAME = "peek.db"


def default_home() -> Path:
    """The platform's user data dir, unless PEEK_HOME relocates everything peek writes."""
    env = os.environ.get("PEEK_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir("peek", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one peek home."""

    home: Path
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Settings for an explicit home, else PEEK_HOME, else the platform default."""
        root = Path(home).expanduser().resolve() if home is not None else default_home()
        max_bytes = int(os.environ.get("PEEK_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES))
        return cls(home=root, max_file_bytes=max_bytes)
