"""A PostgreSQL server for the postgres-marked tests: the one PEEK_TEST_POSTGRES_URL names
(.ci/run starts one), else a throwaway cluster started here from the server binaries.

The cluster lives in a temporary folder, listens on a Unix socket only (no TCP), and runs as a
non-root user (initdb refuses root: as root it runs as `nobody`). Run as a script, this module
starts one and prints its URL (`start DIR`) or stops it (`stop DIR`), for .ci/run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

USER = "peek"


def binaries() -> Path | None:
    """The newest installed server's bin folder (Debian's layout), or one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _as_owner(argv: list[str]) -> list[str]:
    """Run as `nobody` when we are root (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--", *argv]
    return argv


def start(folder: Path) -> str:
    """Init and start a cluster in `folder` (socket in it); returns its SQLAlchemy URL."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    data = folder / "data"
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                              "--auth=trust", "-E", "UTF8", "--no-sync"]), **run)  # type: ignore
    options = (f"-k {folder} -c listen_addresses='' -c fsync=off -c max_connections=200 "
               "-c synchronous_commit=off")
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                              "-l", str(folder / "log"), "-w", "start"]), **run)  # type: ignore
    return f"postgresql+psycopg://{USER}@/postgres?host={folder}"


def stop(folder: Path) -> None:
    """Stop the cluster started in `folder` (fast shutdown) and remove it."""
    bin_dir = binaries()
    if bin_dir is not None and (folder / "data").exists():
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m",
                                  "fast", "-w", "stop"]), check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "start":
        print(start(where))
    else:
        stop(where)
