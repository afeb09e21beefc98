"""Shared fixtures. Tests write only under pytest's temp dirs."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from pathlib import Path

import pytest

from llmops.workspace import Workspace, init_workspace


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests without the integration or e2e marker are unit tests."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("integration", "e2e")):
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")
