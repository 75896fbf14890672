"""tiktoken loads o200k_base with the network switched off."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import reference_encoding

from peek.errors import PeekError
from peek.tokens import SPECS, bundled_bpe_file, count_tokens, encoding, read_ranks

CHECK = (
    "import os; os.environ.pop('TIKTOKEN_CACHE_DIR', None);"
    "from peek.tokens import count_tokens; print(count_tokens('offline tokens for peek'))"
)


def test_count_tokens_is_exact() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("<|endoftext|>") > 1


def _no_network_prefix() -> list[str] | None:
    """`unshare -rn` (or `-n` as root) runs a command in an empty network namespace."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


def test_o200k_loads_with_network_off(tmp_path: Path) -> None:
    prefix = _no_network_prefix()
    if prefix is None:
        pytest.skip("cannot create a network namespace here")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [*prefix, sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == count_tokens("offline tokens for peek")


def test_decoded_encoding_is_cached_and_gives_the_same_counts(tmp_path: Path) -> None:
    code = ("from peek.tokens import count_tokens; "
            "print(count_tokens('getHTTPResponse caches <|endoftext|> ünïcode'))")
    env = {**os.environ, "PEEK_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    cached = list(tmp_path.glob("tiktoken-ranks-o200k_base-*.marshal"))
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert len(cached) == 1 and cached[0].stat().st_size > 1_000_000
    assert first.stdout == second.stdout
    assert int(second.stdout) == count_tokens("getHTTPResponse caches <|endoftext|> ünïcode")


def test_the_encoding_is_tiktokens_own_o200k_base() -> None:
    ours, reference = encoding(), reference_encoding()
    assert ours.n_vocab == reference.n_vocab and ours._special_tokens == reference._special_tokens
    for text in ("getHTTPResponse caches <|endoftext|> ünïcode", "def get(self):\n\treturn 1",
                 "日本語のテキスト and émojis 🎉 123456789", "  trailing spaces   \n\n"):
        assert ours.encode(text, disallowed_special=()) == reference.encode(
            text, disallowed_special=())


def test_counting_changes_no_environment_variable() -> None:
    code = ("import os; before = dict(os.environ); from peek.tokens import count_tokens; "
            "count_tokens('x y'); print(dict(os.environ) == before)")
    env = {k: v for k, v in os.environ.items() if "TIKTOKEN" not in k}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_a_tampered_bpe_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "o200k"
    data = bundled_bpe_file().read_bytes()
    copy.write_bytes(data[:-40] + b"QUFB 199998\n")
    with pytest.raises(PeekError, match="sha256"):
        read_ranks(copy, SPECS["o200k_base"])
