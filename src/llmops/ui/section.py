"""What every tab hands back to the page, and small helpers shared by the tabs."""

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from llmops.errors import LLMOpsError


@dataclass(frozen=True)
class Section:
    """A tab's `load` runs on every page load (spec 5.2 `resume`): it re-reads the workspace and the database."""

    name: str
    load: Callable[[], Sequence[Any]]
    outputs: Sequence[gr.components.Component]


def failed(exc: Exception) -> str:
    """A one-line status for a failed action (the UI shows it instead of a traceback)."""
    return f"❌ {exc}"


def number(value: float | None, field: str) -> float:
    """A number field's value; LLMOpsError naming the field when it was left empty (Gradio sends None)."""
    if value is None:
        raise LLMOpsError(f"{field}: enter a number (the field is empty)")
    return value


def when(timestamp: float | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def frame(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A table of `rows` with exactly `columns` (an empty table keeps its headers)."""
    return pd.DataFrame([[row.get(c) for c in columns] for row in rows], columns=list(columns))
