"""RAPID on the embedded Gemma (llama.cpp, CPU): long target context vs a short retrieved one.

Usage: python benchmarks/rapid_bench.py [--items N] [--target-tokens 8192] [--max-tokens T]
For each llma-rag.jsonl item the target reads ~--target-tokens of passages (other items' passages
as distractors, the item's own passages last, then the question); the drafter reads only the
item's own passages (the retrieved context, <= 2k tokens) and the question. Greedy: the RAPID
output must equal the target alone. Prints acceptance and decode speed-up. Shared-CPU timings
are upper bounds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from peek.agent.drafting.decode import greedy
from peek.agent.drafting.llama_models import load_session
from peek.agent.drafting.rapid import RapidGenerator

DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "llma-rag.jsonl"


def contexts(items: list[dict], index: int, tokenize, budget: int) -> tuple[list[int], list[int]]:
    """(long prompt, short prompt) token lists for item `index`."""
    item = items[index]
    own = "\n\n".join(str(d) for d in item["docs"])
    tail = f"\n\n{own}\n\nQuestion: {item['query']}\nAnswer:"
    others: list[str] = []
    used = len(tokenize(tail))
    for other in items[index + 1:] + items[:index]:
        for doc in other["docs"]:
            cost = len(tokenize(str(doc))) + 1
            if used + cost > budget:
                break
            others.append(str(doc))
            used += cost
    long_text = "\n\n".join(others) + tail
    return tokenize(long_text), tokenize(f"{own}\n\nQuestion: {item['query']}\nAnswer:")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2)
    parser.add_argument("--target-tokens", type=int, default=8192)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--gamma", type=int, default=6)
    args = parser.parse_args()
    items = [json.loads(line) for line in DATA.read_text().splitlines()]
    n_ctx = args.target_tokens + args.max_tokens + 64
    alone_s, target_s = load_session(n_ctx=n_ctx), load_session(n_ctx=n_ctx)
    drafter_s = load_session(n_ctx=4096)

    def tokenize(text: str) -> list[int]:
        return list(alone_s.llama.tokenize(text.encode("utf-8")))

    print("| item | target ctx | drafter ctx | tokens | alone tok/s | RAPID tok/s | speed-up |"
          " accepted/drafted | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i in range(args.items):
        long_p, short_p = contexts(items, i, tokenize, args.target_tokens)
        alone = greedy(alone_s, long_p, args.max_tokens)
        rapid = RapidGenerator(target_s, drafter_s, gamma=args.gamma).generate(
            long_p, short_p, args.max_tokens)
        print(f"| {i} | {len(long_p)} | {len(short_p)} | {len(alone.tokens)} | "
              f"{alone.tokens_per_s:.1f} | {rapid.tokens_per_s:.1f} | "
              f"{rapid.tokens_per_s / max(alone.tokens_per_s, 1e-9):.2f}x | "
              f"{rapid.accepted}/{rapid.drafted} ({rapid.acceptance:.2f}) | "
              f"{alone.tokens == rapid.tokens} |", flush=True)


if __name__ == "__main__":
    main()
