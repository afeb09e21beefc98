"""Security: admin token, path traversal in dataset and model names, body size limit, safe YAML, safetensors only."""

import shutil
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file
from sqlalchemy import func, select

from fakes import stream_of
from llmops import db
from llmops.data.registry import data_file, get_dataset, publish_dataset, register_dataset, validate_dataset
from llmops.errors import LLMOpsError
from llmops.inference.engine import InferenceModel
from llmops.inference.types import Chunk, Completion, Message, Sampling
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.settings import load_settings
from llmops.workspace import Workspace, open_workspace

ADMIN_CALLS = [
    ("/v1/admin/models/chat-v1.0/load", None),
    ("/v1/admin/models/chat-v1.0/unload", None),
    ("/v1/admin/rollout", {"candidate": "chat-v2.0"}),
    ("/v1/admin/traffic", {"traffic": 1.0}),
    ("/v1/admin/promote", {"model": "chat-v2.0"}),
    ("/v1/admin/rollback", None),
]
TRAVERSAL_NAMES = ["../x", "../../etc/passwd", "a/b", "a\\b", "..", ".", "/etc/passwd", "x/../../y", "~root",
                   "name\x00", " space", "", "..hidden", "a" * 300, "%2e%2e%2fetc"]


class Echo:
    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        return Completion(f"{model}: {messages[-1]['content']}", 1, 1, "stop")

    def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
        return stream_of(self, model, messages, sampling)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _versions(workspace: Workspace) -> None:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    _versions(workspace)
    small = open_workspace(workspace.root, ["serve.max_body_bytes=4096"])
    app = create_app(small, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()})
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        yield http


def _row_counts(workspace: Workspace) -> dict[str, int]:
    with workspace.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in db.metadata.tables.items()}


@pytest.mark.anyio
async def test_admin_endpoints_reject_missing_and_wrong_tokens(client: httpx.AsyncClient,
                                                               workspace: Workspace) -> None:
    token = workspace.admin_token()
    bad_headers: list[dict[str, str]] = [
        {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}, {"Authorization": token},
        {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Bearer {token[:-1]}"},
        {"X-Admin-Token": token},
    ]
    before = (_row_counts(workspace), registry.aliases(workspace))
    for path, body in ADMIN_CALLS:
        for headers in bad_headers:
            response = await client.post(path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["error"]["message"]
    assert (_row_counts(workspace), registry.aliases(workspace)) == before
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/v1/admin/promote", json={"model": "chat-v2.0"}, headers=auth)).status_code == 200


@pytest.mark.anyio
async def test_model_names_with_paths_are_not_found(client: httpx.AsyncClient, workspace: Workspace) -> None:
    auth = {"Authorization": f"Bearer {workspace.admin_token()}"}
    for name in ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "chat-v1.0%2F..", "chat-v1.0%00", "..%5Cchat-v1.0"]:
        response = await client.post(f"/v1/admin/models/{name}/load", headers=auth)
        assert response.status_code == 404, name
    for name in TRAVERSAL_NAMES[:10]:
        response = await client.post("/v1/chat/completions",
                                     json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 404, name
        assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("name", [n for n in TRAVERSAL_NAMES if n])  # an empty version means "the next one"
def test_model_registry_rejects_path_names(workspace: Workspace, name: str) -> None:
    with pytest.raises(LLMOpsError, match="not a version name"):
        registry.get_version(workspace, name)
    with pytest.raises(LLMOpsError):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                                  merged=True, version=name)
    assert registry.list_versions(workspace) == []


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_dataset_names_with_paths_are_rejected(workspace: Workspace, name: str) -> None:
    info_before = workspace.dataset_info_path.read_bytes()
    target = workspace.stage_data_dir("cpt") / "ok.jsonl"
    with pytest.raises(LLMOpsError, match="dataset name"):
        publish_dataset(workspace, name, target, [{"text": "hello"}], "pt", "text")
    with pytest.raises(LLMOpsError, match="dataset name"):
        get_dataset(workspace, name)
    with pytest.raises(LLMOpsError):
        validate_dataset(workspace, name)
    assert not target.exists()
    assert workspace.dataset_info_path.read_bytes() == info_before


@pytest.mark.parametrize("file_name", ["../llmops.yaml", "../../llmops.db", "/etc/passwd", "pt/../../x.jsonl",
                                       "", "."])
def test_dataset_files_must_stay_inside_the_data_folder(workspace: Workspace, file_name: str) -> None:
    with pytest.raises(LLMOpsError, match="must stay inside"):
        data_file(workspace, file_name)


def test_files_outside_the_data_folder_are_not_registered(workspace: Workspace) -> None:
    outside = workspace.root / "outside.jsonl"
    outside.write_text('{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(LLMOpsError, match="must stay inside"):
        register_dataset(workspace, "outside", outside, "pt", "text")
    link = workspace.stage_data_dir("cpt") / "link.jsonl"
    link.symlink_to(outside)
    with pytest.raises(LLMOpsError, match="must stay inside"):
        register_dataset(workspace, "link", link, "pt", "text")
    assert _row_counts(workspace)["datasets"] == 0


@pytest.mark.anyio
async def test_oversized_bodies_get_413(client: httpx.AsyncClient, workspace: Workspace) -> None:
    before = _row_counts(workspace)
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    routes = ["/v1/chat/completions", "/v1/arena/battles", "/v1/feedback", "/v1/admin/promote"]
    for path in routes:
        assert (await client.post(path, json=big)).status_code == 413, path

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = await client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == 413
    lying = await client.post("/v1/chat/completions", content=b"{" + b" " * 6000 + b"}",
                              headers={"content-length": "10", "content-type": "application/json"})
    assert lying.status_code in (400, 413, 422)
    assert _row_counts(workspace) == before


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "data: !!python/object/apply:os.system ['touch {marker}']",
    "serve:\n  host: !!python/object/new:os.system ['touch {marker}']",
    "train: !!python/name:os.system",
    "loop: !!python/object:builtins.dict {{}}",
])
def test_settings_yaml_is_loaded_safely(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "executed"
    settings = tmp_path / "llmops.yaml"
    settings.write_text(payload.format(marker=marker), encoding="utf-8")
    with pytest.raises(LLMOpsError, match="not valid YAML"):
        load_settings(settings)
    with pytest.raises(LLMOpsError, match="not valid YAML"):
        load_settings(None, [f"data.tokenizer=!!python/object/apply:os.system ['touch {marker}']"])
    assert not marker.exists()


def _bin_only(model_dir: Path, out: Path) -> Path:
    shutil.copytree(model_dir, out)
    torch.save(load_file(out / "model.safetensors"), out / "pytorch_model.bin")
    (out / "model.safetensors").unlink()
    return out


def test_engine_loads_weights_only_from_safetensors(tiny_model_dir: Path, tmp_path: Path) -> None:
    engine = InferenceModel()
    try:
        with pytest.raises(LLMOpsError, match="safetensors"):
            engine.load_model("chat-v1.0", str(_bin_only(tiny_model_dir, tmp_path / "bin_model")))
        assert engine.models == {}
        adapter = tmp_path / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
        torch.save({}, adapter / "adapter_model.bin")
        with pytest.raises(LLMOpsError, match="safetensors"):
            engine.load_model("chat-v1.1", str(tiny_model_dir), str(adapter))
        assert "chat-v1.1" not in engine.models
    finally:
        engine.close()
