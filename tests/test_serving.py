"""`peek serve-model`: the server plans, a real llama.cpp server answering an OpenAI client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_peek

from peek.agent.serving import ServePlan, plan, speculative_config, vllm_command
from peek.errors import PeekError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_vllm_command_turns_on_prefix_caching_and_ngram_speculation() -> None:
    command = vllm_command("google/gemma-3-270m", "127.0.0.1", 8000)
    assert "--enable-prefix-caching" in command
    spec = json.loads(command[command.index("--speculative-config") + 1])
    assert spec == {"method": "ngram", "num_speculative_tokens": 5,
                    "prompt_lookup_min": 2, "prompt_lookup_max": 5}
    assert command[command.index("--served-model-name") + 1] == "local"
    assert "--speculative-config" not in vllm_command("m", "h", 1, speculation="off")


def test_a_draft_model_replaces_ngram_lookup() -> None:
    spec = speculative_config("ngram", "google/gemma-3-270m")
    assert spec is not None and spec["method"] == "draft_model"
    with pytest.raises(PeekError, match="unknown speculation"):
        speculative_config("medusa", None)


def test_plan_without_a_gpu_uses_llama_cpp_on_the_gguf(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    chosen = plan("llama.cpp", str(gguf), "127.0.0.1", 9000)
    assert chosen.engine == "llama.cpp"
    assert chosen.url == "http://127.0.0.1:9000/v1"
    assert chosen.command[chosen.command.index("--model") + 1] == str(gguf)
    with pytest.raises(PeekError, match="--draft-model needs --engine vllm"):
        plan("llama.cpp", str(gguf), "h", 1, draft_model="x")


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    bad = run_peek("serve-model", "--engine", "tgi")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "peek: error: unknown engine 'tgi' (use --engine auto, vllm or llama.cpp)")
    missing = run_peek("serve-model", "--engine", "llama.cpp", "--model", str(tmp_path / "no.gguf"))
    assert missing.returncode == 2
    assert "no GGUF model file" in missing.stderr


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServePlan]:
    """The embedded model behind llama-cpp-python's OpenAI server, stopped by its PID."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("fastapi")
    home = tmp_path_factory.mktemp("peek-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEEK_HOME", str(home))
        chosen = plan("llama.cpp", None, "127.0.0.1", free_port())
    proc = subprocess.Popen(chosen.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(chosen.url, proc)
        yield chosen
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server we started; kill it if it does not stop."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the server did not answer in time")


def test_llama_cpp_server_answers_peeks_openai_client(llama_server: ServePlan) -> None:
    from peek.agent.litellm_model import LiteLLMModel, import_litellm

    with urllib.request.urlopen(f"{llama_server.url}/models", timeout=5) as reply:
        names = [m["id"] for m in json.load(reply)["data"]]
    assert names == ["local"]
    model = LiteLLMModel("openai/local", api_base=llama_server.url)
    assert model.api_key == "sk-local" or os.environ.get("OPENAI_API_KEY")
    response = import_litellm().completion(
        model=model.name, api_base=model.api_base, api_key=model.api_key, max_tokens=8,
        temperature=0.0, messages=[{"role": "user", "content": "Say hello."}])
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 8


def gpu_ready() -> bool:
    from peek.agent.serving import cuda_available, vllm_installed

    return vllm_installed() and cuda_available()


@pytest.mark.gpu
def test_vllm_serves_with_prefix_caching_and_ngram(tmp_path: Path) -> None:
    """On a GPU machine: vLLM starts from serve-model's plan and answers with speculation on."""
    if not gpu_ready():
        pytest.skip("needs a CUDA GPU and the gpu extra")
    model = os.environ.get("PEEK_VLLM_MODEL", "google/gemma-3-270m")
    chosen = plan("vllm", model, "127.0.0.1", free_port())
    proc = subprocess.Popen(chosen.command)
    try:
        wait_ready(chosen.url, proc, seconds=600)
        body = json.dumps({"model": "local", "prompt": "def fibonacci(n):", "max_tokens": 16})
        request = urllib.request.Request(f"{chosen.url}/completions", body.encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert json.load(reply)["choices"][0]["text"]
    finally:
        stop(proc)


def test_doctor_names_the_engine_drafters_and_retrieval(home: Path) -> None:
    from peek.agent.serving import choose_engine

    out = run_peek("doctor", "--json")
    assert out.returncode == 0, out.stderr
    generation = json.loads(out.stdout)["generation"]
    assert generation["engine"].split()[0] == choose_engine("auto")
    assert generation["drafters"].startswith(("llma, rapid", "none"))
    assert generation["corpus_retrieval"].startswith("bm25")
    text = run_peek("doctor").stdout
    assert "model server engine: " in text and "local drafters: " in text
