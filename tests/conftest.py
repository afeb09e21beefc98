"""Shared fixtures. Tests write only under pytest's temp dirs."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ["COLUMNS"] = "200"  # CLI tables render whole, whatever terminal runs the tests

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pg
from llmops.workspace import Workspace, init_workspace

_CACHE_KEY = pytest.StashKey[Path]()

if TYPE_CHECKING:  # the model builder imports torch: only the tests that use the tiny model pay for it
    from llmops.demo.base_model import BaseModelSpec

_PRODUCTS = (
    ("蓝牙耳机", "Bluetooth earbuds"),
    ("机械键盘", "mechanical keyboard"),
    ("保温杯", "thermos cup"),
    ("运动手表", "sports watch"),
    ("台灯", "desk lamp"),
    ("充电宝", "power bank"),
)
_PRICES = (59, 129, 199, 349, 499)


def pytest_configure(config: pytest.Config) -> None:
    """Point every cache the libraries write (HF datasets, matplotlib, Gradio) into one temp dir."""
    cache = Path(tempfile.mkdtemp(prefix="llmops-test-cache-"))
    config.stash[_CACHE_KEY] = cache
    config.addinivalue_line("markers", "store: runs once on SQLite and once on Postgres (LLMOPS_TEST_DATABASE_URL)")
    for variable, sub in (("HF_HOME", "hf"), ("HF_DATASETS_CACHE", "hf/datasets"), ("MPLCONFIGDIR", "mpl"),
                          ("GRADIO_TEMP_DIR", "gradio"), ("XDG_CACHE_HOME", "xdg"), ("TRITON_CACHE_DIR", "triton"),
                          ("HYPOTHESIS_STORAGE_DIRECTORY", "hypothesis")):
        os.environ[variable] = str(cache / sub)


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = config.stash.get(_CACHE_KEY, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests without the integration or e2e marker are unit tests."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("integration", "e2e")):
            item.add_marker(pytest.mark.unit)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `store` that uses the store (the `workspace` or `store_url` fixture) runs on both backends."""
    if metafunc.definition.get_closest_marker("store") and "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The `database_url` setting of the test's workspace: '' (its SQLite file) unless the test is marked `store`
    and runs in its Postgres case, then a fresh database on the LLMOPS_TEST_DATABASE_URL server."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield ""
        return
    if not pg.server_url():
        pytest.skip(pg.SKIP_REASON)
    with pg.fresh_database() as url:
        yield url


@pytest.fixture
def workspace(tmp_path: Path, store_url: str) -> Iterator[Workspace]:
    created = init_workspace(tmp_path / "ws", overrides=pg.overrides(store_url))
    yield created
    if "engine" in created.__dict__:
        created.engine.dispose()


@pytest.fixture(scope="session")
def tiny_model_texts() -> list[str]:
    """A small deterministic shop corpus in Chinese and English (the tiny model's pre-training text)."""
    docs = []
    for index, ((name_zh, name_en), price) in enumerate((product, price) for product in _PRODUCTS for price in _PRICES):
        days = 7 + index % 3 * 7
        docs.append(
            f"{name_zh}售价{price}元，支持{days}天无理由退货。客户问：{name_zh}怎么充电？"
            f"客服答：请使用原装数据线，充满约需两小时。感谢您的耐心，祝您购物愉快！"
        )
        docs.append(
            f"The {name_en} costs {price} yuan and can be returned within {days} days. "
            f"Customer: how do I charge the {name_en}? Support: use the original cable; a full charge "
            "takes about two hours. Thank you for your patience, have a nice day!"
        )
    return docs


@pytest.fixture(scope="session")
def tiny_model_spec() -> "BaseModelSpec":
    """Sizes of the tests' tiny model (2 layers, hidden 64, ~0.1M parameters; builds in about a second)."""
    from llmops.demo.base_model import BaseModelSpec

    return BaseModelSpec(
        vocab_size=1200,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=192,
        max_position_embeddings=512,
        block_size=64,
        batch_size=8,
        steps=60,
        warmup_steps=5,
        seed=0,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_texts: list[str], tiny_model_spec: "BaseModelSpec"
) -> Path:
    """A tiny pre-trained Qwen2 HF folder (ChatML tokenizer, `template: qwen`), built once per test session."""
    from llmops.demo.base_model import build_base_model

    out = tmp_path_factory.mktemp("tiny_model") / "model"
    build_base_model(out, tiny_model_texts, tiny_model_spec)
    return out


@pytest.fixture
def tab_values() -> "Callable[[list[Any]], dict[str, list[Any]]]":
    """Loads each UI section and checks its values against its widgets: one value each, accepted by the widget."""

    def load(sections: list[Any]) -> dict[str, list[Any]]:
        values = {}
        for section in sections:
            result = list(section.load())
            assert len(result) == len(section.outputs), section.name
            for component, value in zip(section.outputs, result, strict=True):
                if not isinstance(value, dict) or "__type__" not in value:
                    component.postprocess(value)
            values[section.name] = result
        return values

    return load
