"""The Evictor: keep the rendered map within its token budget by dropping the least useful entries.

Default score, and why. `score = helpful * 0.5 ** (age / 16) - harmful - stale - outdated`,
where `age` is the number of policy updates since the entry was last confirmed (added, replaced
or tagged helpful) and `outdated` is 1 while its code anchors no longer match the working tree.
The helpful term is a recency-weighted frequency, as in the LRFU cache policy: an entry that
helped often *and* recently outranks one that helped once long ago, so a map that has drifted
with the questions or the code makes room for what sessions use now. Harmful and stale tags do
not decay: a statement that misled an agent stays wrong until the Cartographer replaces it,
which is PEEK's point that misleading map content costs more than missing content. A new entry
scores 0 like an old never-confirmed one, and ties evict the older entry first, so fresh
knowledge gets a chance to prove itself. The half-life (16 updates) keeps a few confirmations
meaningful over a typical evolve run. The score is pluggable: pass any `ScoreFn`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from peek.contextmap.errors import BudgetError
from peek.contextmap.model import Entry
from peek.contextmap.render import render_entries
from peek.contextmap.store import ChangeSet
from peek.contextmap.tokens import estimate_tokens, exact_tokens

ScoreFn = Callable[[Entry, int], float]
HALF_LIFE_UPDATES = 16.0


def default_score(entry: Entry, step: int) -> float:
    """Recency-weighted helpfulness minus harm, staleness and a current-staleness penalty."""
    age = max(0, step - entry.updated_step)
    recency = 0.5 ** (age / HALF_LIFE_UPDATES)
    outdated = 1.0 if entry.outdated else 0.0
    return entry.helpful * recency - entry.harmful - entry.stale - outdated


def pinned_tokens(entries: Iterable[Entry]) -> int:
    """Tokens the pinned entries alone need: the smallest budget the map can have."""
    return exact_tokens(render_entries(e for e in entries if e.pinned))


def check_pinned_fit(entries: Iterable[Entry], budget: int) -> None:
    """Refuse a budget that cannot hold the pinned entries, before anything is dropped."""
    need = pinned_tokens(entries)
    if need > budget:
        raise BudgetError(
            f"the pinned entries need {need} tokens but the budget is {budget}",
            f"use --budget {need} or more, or unpin entries with: peek map unpin <path> ID",
        )


@dataclass(frozen=True)
class Evictor:
    """Drops the lowest-scoring unpinned entry (older first on ties) while over budget."""

    score: ScoreFn = default_score

    def victims(self, entries: Iterable[Entry], budget: int, step: int) -> list[Entry]:
        """The entries to drop, in eviction order, so that the rendered map fits `budget`.

        Exact: a per-entry estimate drops fast, then o200k counts of the rendered block decide;
        once the map fits, every dropped entry that still fits is given back (best score
        first), so no entry is dropped while the map would fit with it.
        """
        live = {e.id: e for e in entries}
        if exact_tokens(render_entries(live.values())) <= budget:
            return []
        check_pinned_fit(live.values(), budget)
        queue = sorted((e for e in live.values() if not e.pinned), key=self._key(step))
        out: list[Entry] = []
        while queue and estimate_tokens(live.values()) > budget:  # fast, may overshoot
            out.append(live.pop(queue.pop(0).id))
        while queue and exact_tokens(render_entries(live.values())) > budget:
            out.append(live.pop(queue.pop(0).id))
        for entry in reversed(list(out)):
            live[entry.id] = entry
            if exact_tokens(render_entries(live.values())) > budget:
                del live[entry.id]
            else:
                out.remove(entry)
        return out

    def enforce(self, cs: ChangeSet, step: int | None = None) -> list[Entry]:
        """Evict inside a change set, logging each eviction with the score that decided it."""
        budget = cs.map.state.budget_tokens
        now = cs.map.state.updates if step is None else step
        dropped = self.victims(cs.map.entries.values(), budget, now)
        for entry in dropped:
            reason = f"over the {budget}-token budget; score {self.score(entry, now):.2f}"
            cs.remove(entry.id, op="EVICT", reason=reason)
        return dropped

    def _key(self, step: int) -> Callable[[Entry], tuple[float, int, str]]:
        return lambda e: (self.score(e, step), e.created_step, e.id)
