"""CPT / SFT / DPO forms: a registered dataset, a model (the base or a registered version; by default CPT's
the base, SFT's the newest completion version, DPO's production), one field per
typed stage setting (`train.cpt`, `train.sft`, `train.dpo`: the whitelist `train.configs.NETWORK_HYPERPARAMETERS`,
with the workspace settings' values as defaults) and overrides of those keys only. The library
(`train.network`) checks the request, derives the output folder and writes the CLI's config."""

from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmops.train.configs import Hyperparameter, config_yaml, network_hyperparameters
from llmops.train.network import (
    dataset_choices,
    default_hyperparameters,
    default_model,
    model_choices,
    write_network_config,
)
from llmops.workspace import Workspace

STAGES = {"CPT": "pt", "SFT": "sft", "DPO": "dpo"}
UNSET = "not set: the default"


@dataclass(frozen=True)
class Form:
    stage: str  # CPT | SFT | DPO
    dataset: gr.Dropdown
    model: gr.Dropdown
    names: list[str]
    fields: list[gr.components.Component]
    overrides: gr.Textbox

    @property
    def inputs(self) -> list[gr.components.Component]:
        """What the Generate button sends: dataset, model, the fields, the overrides."""
        return [self.dataset, self.model, *self.fields, self.overrides]


def _field(elem_id: str, name: str, spec: Hyperparameter, default: Any) -> gr.components.Component:
    """A widget for one whitelisted key whose default is a valid value of the widget. A number the settings
    leave unset stays empty (sent as None, so left out of the config): the placeholder keeps Gradio's
    browser code from turning an empty number field into 0, which `minimum` may refuse or which would
    silently set e.g. `seed: 0` or `max_grad_norm: 0`."""
    if spec.choices:
        return gr.Dropdown(label=name, info=spec.description, choices=list(spec.choices), value=default,
                           elem_id=elem_id)
    if spec.type is str:
        return gr.Textbox(label=name, info=spec.description, value=default or "", elem_id=elem_id)
    return gr.Number(label=name, info=spec.description, value=default, precision=0 if spec.type is int else None,
                     minimum=spec.minimum, placeholder=UNSET, elem_id=elem_id)


def choices(workspace: Workspace, stage: str) -> tuple[Any, Any]:
    """Updates of a form's dataset and model dropdowns: what is registered now, with the defaults selected (the
    newest dataset of the stage's kind; `train.network.default_model`)."""
    datasets = dataset_choices(workspace, STAGES[stage])
    return (gr.update(choices=datasets, value=datasets[0] if datasets else None),
            gr.update(choices=model_choices(workspace), value=default_model(workspace, STAGES[stage])))


def render_form(workspace: Workspace, stage: str) -> Form:
    """The dataset and model dropdowns, one field per whitelisted hyperparameter, and overrides of those."""
    prefix = stage.lower()
    datasets = dataset_choices(workspace, STAGES[stage])
    with gr.Row(equal_height=False):
        dataset = gr.Dropdown(label="Dataset (registered)", choices=datasets, value=datasets[0] if datasets else None,
                              elem_id=f"{prefix}-dataset")
        model = gr.Dropdown(label="Model (base or registered version)", choices=model_choices(workspace),
                            value=default_model(workspace, STAGES[stage]), elem_id=f"{prefix}-model")
    defaults = default_hyperparameters(workspace, STAGES[stage])
    specs = network_hyperparameters(STAGES[stage])
    with gr.Row(equal_height=False):
        fields = [_field(f"{prefix}-{name}", name, spec, defaults[name]) for name, spec in specs.items()]
    overrides = gr.Textbox(label="Overrides of the hyperparameters above, key=value one a line (e.g. max_steps=20)",
                           lines=2, elem_id=f"overrides-{prefix}")
    return Form(stage, dataset, model, list(specs), fields, overrides)


def override_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def generate(workspace: Workspace, form: Form, values: tuple[Any, ...]) -> tuple[str, str, str]:
    """Write the stage's config from the form's values (`form.inputs` order); returns (path, YAML, notes)."""
    dataset, model, *fields, overrides = values
    written = write_network_config(workspace, STAGES[form.stage], dataset or "", model or "",
                                   dict(zip(form.names, fields, strict=True)), override_lines(overrides or ""))
    return str(written.path), config_yaml(written.config), "; ".join(written.notes)
