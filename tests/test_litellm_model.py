"""The litellm adapter against real litellm: failures become one line that names the fix."""

from __future__ import annotations

import socket

import pytest

from peek.agent.litellm_model import LiteLLMModel
from peek.agent.models import Message
from peek.agent.registry import resolve_model
from peek.errors import PeekError


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_unreachable_endpoint_names_the_api_base() -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    model = LiteLLMModel("openai/local", api_base=base, api_key="sk-none", timeout=5)
    with pytest.raises(PeekError, match="cannot reach the endpoint") as err:
        model.chat([Message("user", "hi")])
    assert base in str(err.value)


def test_missing_key_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PeekError, match="API key"):
        LiteLLMModel("openai/gpt-4o-mini", timeout=5).chat([Message("user", "hi")])


def test_no_cost_map_fetch(capfd: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(PeekError):
        LiteLLMModel("openai/local", api_base=base, api_key="sk-none", timeout=5).chat(
            [Message("user", "hi")]
        )
    assert "model cost map" not in capfd.readouterr().err


def test_registry_routes_provider_strings() -> None:
    assert resolve_model(None) is None and resolve_model("offline") is None
    model = resolve_model("hosted_vllm/qwen", api_base="http://127.0.0.1:8000/v1")
    assert isinstance(model, LiteLLMModel)
    assert (model.name, model.api_base) == ("hosted_vllm/qwen", "http://127.0.0.1:8000/v1")
    with pytest.raises(PeekError, match="unknown model"):
        resolve_model("gpt4")


@pytest.mark.slow
def test_litellm_is_offline_without_changing_the_users_environment() -> None:
    """A fresh process: litellm loads its bundled cost map, and the environment peek hands back
    has none of the variables it set for litellm."""
    import subprocess
    import sys

    code = ("import os; before = dict(os.environ)\n"
            "from peek.agent.litellm_model import import_litellm\n"
            "import_litellm()\n"
            "from litellm.litellm_core_utils import get_model_cost_map as g\n"
            "print(g._cost_map_source_info.source, dict(os.environ) == before)")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("LITELLM_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True).stdout.split()
    assert out == ["local", "True"]
