"""The cyclic garbage collector, paused or frozen around work where its passes hurt."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Pause the cyclic GC over bulk work whose many objects hold no cycles (reference
    counting frees them), where its full passes cost more the more is alive."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def frozen() -> Iterator[None]:
    """Freeze every object while forking, so no child's GC frees what it inherited (an
    unreachable SQLite connection freed in a child closes and checkpoints the parent's WAL
    behind its back, the fork hazard SQLite warns of)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
