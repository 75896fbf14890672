"""Prefix-cache hit of `peek serve-model`: time to first token, cold prefix vs reused prefix.

Usage: python benchmarks/serve_bench.py [--engine auto|vllm|llama.cpp] [--model M] [--rounds N]
Starts the server serve-model would start, then sends prompts laid out as peek lays them out:
the byte-stable head (instructions, context map, episode) first, the question last. A "cold"
request has a head the server has never seen (a different episode); a "warm" one reuses the head
of the request before it with a new question. With --speculation, vLLM's ngram speculation is
compared with none by decode tokens/s (GPU only). Timings on a shared CPU are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from peek.agent.prompts import system_prompt
from peek.agent.serving import plan

DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "llma-rag.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, seconds: float = 900.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not start")


def first_token_and_rate(url: str, prompt: str, max_tokens: int) -> tuple[float, float]:
    """Seconds to the first streamed token, and decode tokens/s after it."""
    body = json.dumps({"model": "local", "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0.0, "stream": True}).encode()
    request = urllib.request.Request(f"{url}/completions", body,
                                     {"Content-Type": "application/json"})
    started = time.perf_counter()
    first, chunks = 0.0, 0
    with urllib.request.urlopen(request, timeout=600) as reply:
        for line in reply:
            if line.startswith(b"data: ") and b"[DONE]" not in line:
                chunks += 1
                first = first or time.perf_counter() - started
    total = time.perf_counter() - started
    return first, (chunks - 1) / (total - first) if chunks > 1 and total > first else 0.0


def prompts(rounds: int) -> list[tuple[str, str]]:
    """(kind, prompt) pairs: each item's passages form an episode head, asked twice."""
    items = [json.loads(line) for line in DATA.read_text().splitlines()][:rounds]
    out = []
    for i, item in enumerate(items):
        episode = "\n".join(str(d) for d in item["docs"][:6])
        head = system_prompt(f"- episode {i}: notes from an earlier session", episode)
        out.append(("cold", f"{head}\n\nUser: {item['query']}\nAssistant:"))
        out.append(("warm", f"{head}\n\nUser: say more about {item['query']}\nAssistant:"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--model")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--speculation", default="ngram")
    args = parser.parse_args()
    chosen = plan(args.engine, args.model, "127.0.0.1", free_port(), args.speculation)
    proc = subprocess.Popen(chosen.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(chosen.url)
        times: dict[str, list[float]] = {"cold": [], "warm": []}
        rates: list[float] = []
        for kind, prompt in prompts(args.rounds):
            ttft, rate = first_token_and_rate(chosen.url, prompt, 16)
            times[kind].append(ttft)
            rates.append(rate)
            print(f"{kind}: ttft {ttft:.3f} s, decode {rate:.1f} tok/s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    print(f"\n| engine | speculation | rounds | TTFT cold (median) | TTFT reused prefix | ratio |"
          f" decode tok/s |\n|---|---|---|---|---|---|---|\n| {chosen.engine} | "
          f"{args.speculation if chosen.engine == 'vllm' else 'none'} | {args.rounds} | "
          f"{cold:.3f} s | {warm:.3f} s | {warm / cold:.2f} | {statistics.median(rates):.1f} |")


if __name__ == "__main__":
    main()
