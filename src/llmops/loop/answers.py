"""Answers of registered versions for evaluation: the embedded engine (transformers + peft), batched.

`EngineAnswers` is the `Generate` the judges call: each prompt is one user turn, rendered through the
version's chat template, sampled with the workspace's serving defaults unless told otherwise.
"""

from collections.abc import Sequence

from rich.progress import Progress

from llmops.inference.engine import GenerationRequest, InferenceModel
from llmops.inference.loading import load_version, serving_sampling
from llmops.inference.types import Sampling
from llmops.models import registry
from llmops.workspace import Workspace


class EngineAnswers:
    """(version name, prompts) → one sampled answer per prompt, from versions loaded on first use."""

    def __init__(self, workspace: Workspace, sampling: Sampling | None = None, batch_size: int = 32,
                 engine: InferenceModel | None = None, show_progress: bool = True) -> None:
        self.workspace = workspace
        self.sampling = sampling or serving_sampling(workspace.settings.serve)
        self.batch_size = batch_size
        self.engine = engine or InferenceModel(max_batch_size=batch_size)
        self.show_progress = show_progress

    def load(self, name: str) -> None:
        load_version(self.engine, registry.get_version(self.workspace, name))

    def __call__(self, model: str, prompts: Sequence[str]) -> list[str]:
        self.load(model)
        requests = [GenerationRequest(model, self.engine.render_chat(model, [{"role": "user", "content": p}]),
                                      self.sampling) for p in prompts]
        answers: list[str] = []
        with Progress(disable=not self.show_progress, transient=True) as progress:
            task = progress.add_task(f"answers of {model}", total=len(requests))
            for start in range(0, len(requests), self.batch_size):
                batch = requests[start:start + self.batch_size]
                answers.extend(c.text for c in self.engine.generate_batch(batch))
                progress.advance(task, len(batch))
        return answers

    def close(self) -> None:
        self.engine.close()
