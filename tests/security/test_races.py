"""Bounded race tests: a few thousand swaps in a few seconds, and no read ever leaves the root.

A thread swaps a folder (or a file) for a symlink to the outside and back as fast as it can,
while reads go on; the race-free reader opens every component without following symlinks, so a
read either gets the corpus's own text or a refusal, never the outside file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peek.safefs import SandboxError, read_beneath
from peek.sandbox import FileTools
from peek.service import Peek

pytestmark = pytest.mark.slow  # long: run with -m slow (CI runs both)

INSIDE = "inside text\n"
OUTSIDE = "TOKEN_OUTSIDE\n"
SWAPS = 2000  # each test runs until this many swaps (or MAX_SECONDS under a busy CPU)
MAX_SECONDS = 8.0


@contextmanager
def swapping(swap: Callable[[int], None]) -> Iterator[list[int]]:
    """Run `swap(n)` in a loop on a thread until the block ends; yields the swap counter."""
    stop = threading.Event()
    count = [0]

    def loop() -> None:
        while not stop.is_set():
            swap(count[0])
            count[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        stop.set()
        thread.join(5)


def setup_dirs(tmp_path: Path) -> tuple[Path, Path]:
    root = (tmp_path / "corpus").resolve()
    (root / "real").mkdir(parents=True)
    (root / "real" / "file.txt").write_text(INSIDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_text(OUTSIDE)
    return root, outside


def folder_swapper(root: Path, outside: Path) -> Callable[[int], None]:
    """Make `swap` alternate between the real folder and a symlink to the outside."""
    link_tmp = root / "swap.tmp"

    def swap(n: int) -> None:
        target = root / "real" if n % 2 else outside
        if link_tmp.is_symlink():
            link_tmp.unlink()
        link_tmp.symlink_to(target)
        os.replace(link_tmp, root / "swap")

    return swap


def reads_until(swaps: list[int], read: Callable[[], str]) -> tuple[int, int, list[str]]:
    """Read until SWAPS swaps happened (or MAX_SECONDS): (inside reads, refusals, leaks)."""
    ok = refused = 0
    bad: list[str] = []
    deadline = time.monotonic() + MAX_SECONDS
    while swaps[0] < SWAPS and time.monotonic() < deadline:
        try:
            text = read()
        except SandboxError:
            refused += 1
            continue
        if text == INSIDE:
            ok += 1
        else:
            bad.append(text)
    return ok, refused, bad


@pytest.mark.timeout(60)
def test_parent_folder_swapped_for_a_symlink_never_leaks(tmp_path: Path) -> None:
    root, outside = setup_dirs(tmp_path)
    swap = folder_swapper(root, outside)
    swap(1)
    with swapping(swap) as swaps:
        ok, refused, bad = reads_until(
            swaps, lambda: read_beneath(root, "swap/file.txt", 1 << 20).decode())
    assert bad == []
    assert swaps[0] > 200 and ok + refused > 200
    assert refused > 0  # the outside side of the swap was seen, and refused


@pytest.mark.timeout(60)
def test_read_file_tool_under_a_folder_swap_never_leaks(tmp_path: Path) -> None:
    root, outside = setup_dirs(tmp_path)
    tools = FileTools(root)
    swap = folder_swapper(root, outside)
    swap(1)

    def read() -> str:
        return tools.read_file("swap/file.txt").text.split("| ", 1)[1] + "\n"

    with swapping(swap) as swaps:
        ok, refused, bad = reads_until(swaps, read)
    assert bad == []
    assert swaps[0] > 200 and ok > 0


@pytest.mark.timeout(60)
def test_file_swapped_for_a_symlink_never_leaks(tmp_path: Path) -> None:
    root, outside = setup_dirs(tmp_path)
    real = root / "real" / "file.txt"
    spare = root / "spare.txt"
    spare.write_text(INSIDE)

    def swap(n: int) -> None:
        tmp = root / "f.tmp"
        if n % 2:
            tmp.write_text(INSIDE)
        else:
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(outside / "file.txt")
        os.replace(tmp, real)

    with swapping(swap) as swaps:
        ok, refused, bad = reads_until(
            swaps, lambda: read_beneath(root, "real/file.txt", 1 << 20).decode())
    assert bad == []
    assert swaps[0] > 200 and ok > 0 and refused > 0


@pytest.mark.timeout(60)
def test_file_swapped_for_a_fifo_never_blocks(tmp_path: Path) -> None:
    root, _ = setup_dirs(tmp_path)
    real = root / "real" / "file.txt"

    def swap(n: int) -> None:
        tmp = root / "p.tmp"
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if n % 2:
            tmp.write_text(INSIDE)
        else:
            os.mkfifo(tmp)
        os.replace(tmp, real)

    with swapping(swap) as swaps:
        ok, refused, bad = reads_until(
            swaps, lambda: read_beneath(root, "real/file.txt", 1 << 20).decode())
    assert bad == [] and swaps[0] > 200 and ok + refused > 200


@pytest.mark.timeout(120)
def test_indexer_never_stores_outside_text_or_hangs(tmp_path: Path) -> None:
    """Index while files flip between text, a symlink out and a FIFO; nothing outside is found."""
    root, outside = setup_dirs(tmp_path)
    for n in range(40):
        (root / f"f{n}.txt").write_text(f"inside number {n}\n")
    home = tmp_path / "home"

    def swap(n: int) -> None:
        victim = root / f"f{n % 40}.txt"
        tmp = root / "x.tmp"
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        kind = n % 3
        if kind == 0:
            tmp.symlink_to(outside / "file.txt")
        elif kind == 1:
            os.mkfifo(tmp)
        else:
            tmp.write_text(f"inside number {n % 40}\n")
        os.replace(tmp, victim)

    runs = 0
    peek = Peek(root, home)
    try:
        with swapping(swap) as swaps:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline or runs < 2:  # a busy CPU slows the first run
                peek.index()
                runs += 1
        peek.index()
        assert peek.search("TOKEN_OUTSIDE", 10) == []
        with peek.db.read() as conn:
            stored = conn.exec_driver_sql("SELECT COUNT(*) FROM chunks WHERE text LIKE "
                                          "'%TOKEN_OUTSIDE%'").scalar()
        assert stored == 0
        assert runs >= 2 and swaps[0] > 100
    finally:
        peek.close()
