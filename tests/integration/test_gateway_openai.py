"""The official `openai` client (sync and streaming) against the gateway on a real socket (127.0.0.1, free port)."""

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from llmops.inference.engine import InferenceModel
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(workspace: Workspace, tiny_model_dir: Path) -> Iterator[tuple[str, InferenceModel]]:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                              path=str(tiny_model_dir), merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    engine = InferenceModel(max_batch_size=8)
    with BackgroundServer(create_app(workspace, engine=engine)) as server:
        yield server.url, engine
    engine.close()


def test_openai_client_sync_and_streaming(gateway: tuple[str, InferenceModel]) -> None:
    url, engine = gateway
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    assert {m.id for m in client.models.list()} == {"production", "chat-v1.0"}
    messages = [{"role": "user", "content": "How do I charge the Bluetooth earbuds?"}]
    reply = client.chat.completions.create(model="production", messages=messages, temperature=0, max_tokens=12)  # type: ignore[arg-type]
    expected = engine.chat("chat-v1.0", messages, temperature=0, max_tokens=12)
    assert reply.model == "chat-v1.0" and reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.content == expected.text
    assert reply.usage is not None and reply.usage.completion_tokens == expected.completion_tokens

    stream = client.chat.completions.create(model="chat-v1.0", messages=messages, temperature=0, max_tokens=12,  # type: ignore[arg-type]
                                            stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected.text
    assert chunks[-1].choices[0].finish_reason == expected.finish_reason
    assert len({c.id for c in chunks}) == 1
    assert len(chunks) > 4  # piece by piece as decoded, not one block

    with_usage = list(client.chat.completions.create(
        model="chat-v1.0", messages=messages, temperature=0, max_tokens=12, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == expected.completion_tokens

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="chat-v9.0", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="production", messages=messages, max_tokens=10**6)  # type: ignore[arg-type]
