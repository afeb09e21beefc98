"""CPT / SFT / DPO forms built from the config builders' signatures, so the spec's defaults live in one place."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmops.train.configs import (
    config_yaml,
    create_cpt_config,
    create_dpo_config,
    create_sft_config,
    write_config,
)
from llmops.workspace import Workspace

BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "CPT": create_cpt_config,
    "SFT": create_sft_config,
    "DPO": create_dpo_config,
}


@dataclass(frozen=True)
class Form:
    stage: str
    names: list[str]
    fields: list[gr.components.Component]
    overrides: gr.Textbox


def _field(stage: str, name: str, default: Any) -> gr.components.Component:
    elem_id = f"{stage.lower()}-{name}"
    if isinstance(default, bool):
        return gr.Checkbox(label=name, value=default, elem_id=elem_id)
    if isinstance(default, int):
        return gr.Number(label=name, value=default, precision=0, elem_id=elem_id)
    if isinstance(default, float):
        return gr.Number(label=name, value=default, elem_id=elem_id)
    return gr.Textbox(label=name, value=default or "", elem_id=elem_id)


def workspace_defaults(workspace: Workspace) -> dict[str, Any]:
    """The workspace's own choices that replace the builders' defaults in the forms."""
    return {"model_name": workspace.settings.train.base_model, "template": workspace.settings.train.template}


def render_form(stage: str, defaults: dict[str, Any]) -> Form:
    """One field per parameter of the stage's builder (numbers as numbers), plus free `key=value` overrides."""
    parameters = inspect.signature(BUILDERS[stage]).parameters
    fields = []
    with gr.Row(equal_height=False):
        for name, parameter in parameters.items():
            fields.append(_field(stage, name, defaults.get(name, parameter.default)))
    overrides = gr.Textbox(label="Overrides: any LLaMA-Factory key, key=value one a line (e.g. max_steps=20)",
                           lines=2, elem_id=f"overrides-{stage.lower()}")
    return Form(stage, list(parameters), fields, overrides)


def arguments(form: Form, values: tuple[Any, ...]) -> dict[str, Any]:
    """The builder's keyword arguments from the form's values (an empty text means the parameter's None)."""
    parameters = inspect.signature(BUILDERS[form.stage]).parameters
    result: dict[str, Any] = {}
    for name, value in zip(form.names, values, strict=True):
        default = parameters[name].default
        if isinstance(default, int) and not isinstance(default, bool):
            result[name] = int(value)
        elif isinstance(value, str) and not value.strip():
            result[name] = None if default is None else value
        else:
            result[name] = value
    return result


def override_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def generate(workspace: Workspace, form: Form, values: tuple[Any, ...], overrides: str) -> tuple[str, str, str]:
    """Write the stage's config to configs/llmops/; returns (path, YAML, notes)."""
    config = BUILDERS[form.stage](**arguments(form, values))
    written = write_config(workspace, config, override_lines(overrides))
    notes = "; ".join(written.notes)
    return str(written.path), config_yaml(written.config), notes
