"""LLMA reference copying vs plain greedy decoding on shared/eval/llma-rag.jsonl, side by side.

Usage: python benchmarks/llma_bench.py [--items N] [--max-tokens T] [--docs D] [--k K]
Both decoders run in one process on the embedded Gemma GGUF (llama.cpp, greedy), each item plain
first, then LLMA, on two contexts with the same settings. Prints per-item identity and a table:
decode tokens/s (generated tokens over the time after the prompt was read), acceptance rate and
the speed-up. Timings on a shared CPU are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from peek.agent.drafting.decode import greedy, greedy_drafted
from peek.agent.drafting.llama_models import load_session
from peek.agent.drafting.llma import LlmaDrafter

DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "llma-rag.jsonl"


def prompt_of(item: dict[str, object], docs: int) -> tuple[str, list[str]]:
    """Passages first, then the question: the answer copies from the references."""
    passages = [str(d) for d in item["docs"]][:docs]  # type: ignore[index]
    body = "\n\n".join(f"Passage {i + 1}: {p}" for i, p in enumerate(passages))
    return f"{body}\n\nQuestion: {item['query']}\nAnswer:", passages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args()
    items = [json.loads(line) for line in DATA.read_text().splitlines()][: args.items]
    plain_s, llma_s = load_session(), load_session()
    rows = []
    for number, item in enumerate(items):
        text, passages = prompt_of(item, args.docs)
        prompt = plain_s.llama.tokenize(text.encode("utf-8"))
        refs = [plain_s.llama.tokenize(p.encode("utf-8"), add_bos=False) for p in passages]
        plain = greedy(plain_s, prompt, args.max_tokens)
        fast = greedy_drafted(llma_s, prompt, args.max_tokens, LlmaDrafter(refs, k=args.k).draft)
        same = plain.tokens == fast.tokens
        rows.append((plain, fast, same))
        print(f"item {number:>3}: prompt {len(prompt):>5} tok, out {len(plain.tokens):>3} tok, "
              f"plain {plain.tokens_per_s:6.1f} tok/s, llma {fast.tokens_per_s:6.1f} tok/s, "
              f"accepted {fast.accepted:>3}/{fast.drafted:<3} identical={same}", flush=True)
    print_table(rows)


def print_table(rows: list[tuple[object, object, bool]]) -> None:
    """The summary: decode speed side by side (pooled over items), acceptance, identity."""
    plain = [r[0] for r in rows]
    fast = [r[1] for r in rows]
    tokens = sum(len(p.tokens) for p in plain)  # type: ignore[attr-defined]
    plain_tps = tokens / sum(p.decode_s for p in plain)  # type: ignore[attr-defined]
    fast_tps = sum(len(f.tokens) for f in fast) / sum(f.decode_s for f in fast)  # type: ignore
    drafted = sum(f.drafted for f in fast)  # type: ignore[attr-defined]
    accepted = sum(f.accepted for f in fast)  # type: ignore[attr-defined]
    speedups = [f.tokens_per_s / p.tokens_per_s for p, f in zip(plain, fast, strict=True)  # type: ignore
                if p.tokens_per_s > 0]  # type: ignore[attr-defined]
    print("\n| decoder | items | tokens | decode tok/s | forwards | acceptance | identical |")
    print("|---|---|---|---|---|---|---|")
    print(f"| plain greedy | {len(rows)} | {tokens} | {plain_tps:.1f} | "
          f"{sum(p.forwards for p in plain)} | - | - |")  # type: ignore[attr-defined]
    print(f"| LLMA | {len(rows)} | {sum(len(f.tokens) for f in fast)} | {fast_tps:.1f} | "  # type: ignore
          f"{sum(f.forwards for f in fast)} | {accepted / max(drafted, 1):.2f} "  # type: ignore
          f"({accepted}/{drafted}) | {sum(r[2] for r in rows)}/{len(rows)} |")
    print(f"\nspeed-up (pooled): {fast_tps / plain_tps:.2f}x; "
          f"median per item: {statistics.median(speedups):.2f}x")


if __name__ == "__main__":
    main()
