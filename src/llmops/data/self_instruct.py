"""Self-Instruct SFT data (spec 4.2): template mode (`use_mock=True`) and LLM mode, messages format.

Template mode builds tasks of the six types from the documents' facts with a template set (templates.py:
the generic one by default; the demo passes its shop's); LLM mode runs the Self-Instruct bootstrap from seed
tasks (the built-in generic ones by default) against an OpenAI-compatible endpoint (self_instruct_llm.py).
Both reject a task whose prompt has ROUGE-L ≥ `rouge_threshold` against the tasks kept so far. A share
`closing_rate` of the answers ends with a polite closing phrase of the template set (the demo's simulated
users like those; the SFT model should produce them only sometimes).
"""

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from llmops.data.doc_facts import is_chinese
from llmops.data.documents import load_documents
from llmops.data.eval_sets import held_out_flags
from llmops.data.example import Example
from llmops.data.formats import record_problems
from llmops.data.registry import DatasetRecord, data_file, publish_dataset, timestamped_path
from llmops.data.rouge import RougePool
from llmops.data.seed_tasks import GENERIC_SEED_TASKS, read_seed_tasks
from llmops.data.self_instruct_llm import Bootstrap, BootstrapStats, LLMEndpoint, Task
from llmops.data.templates import GENERIC_TEMPLATES, TASK_TYPES, TemplateSet, make_example
from llmops.errors import LLMOpsError, located
from llmops.fileio import MAX_FILE_BYTES
from llmops.settings import updated
from llmops.workspace import Workspace, current_workspace

MISSES_PER_TYPE = 200


@dataclass
class GenerationStats:
    candidates: int = 0
    rejected_similar: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    closings: int = 0
    llm: BootstrapStats | None = None
    skipped: list[str] = field(default_factory=list)  # documents not read: "file[:line]: reason"


@dataclass(frozen=True)
class GeneratedInstructions:
    """Generated SFT records (messages format) and each one's task type, not yet written."""

    records: list[dict[str, Any]]
    task_types: list[str]
    stats: GenerationStats


@dataclass(frozen=True)
class SelfInstructReport:
    path: Path
    dataset: DatasetRecord
    stats: GenerationStats


class SelfInstructGenerator:
    """Generates SFT data in the spec's messages format (4.2.2) from documents' texts and seed tasks.

    Without `documents`, template mode reads the documents of `workspace` (default: the workspace in the
    current folder) when it first runs, and `save_data` registers there; without `seed_tasks`, LLM mode
    starts from the built-in generic ones.
    `templates` is the template set of template mode (the demo passes its shop's, built from its products).
    """

    def __init__(self, documents: Sequence[str] | None = None, seed_tasks: Sequence[Task] | None = None, *,
                 templates: TemplateSet[Any] = GENERIC_TEMPLATES, workspace: Workspace | None = None,
                 system_prompt: str = "", closing_rate: float = 0.15, rouge_threshold: float = 0.7, seed: int = 0,
                 endpoint: LLMEndpoint | None = None) -> None:
        if not 0 <= closing_rate <= 1:
            raise LLMOpsError(f"closing_rate {closing_rate}: must be between 0 and 1")
        self.documents = None if documents is None else list(documents)
        self.workspace = workspace
        self.templates = templates
        self.seed_tasks = seed_tasks_from(None) if seed_tasks is None else list(seed_tasks)
        self.system_prompt = system_prompt
        self.closing_rate = closing_rate
        self.rouge_threshold = rouge_threshold
        self.endpoint = endpoint
        self.random = random.Random(seed)
        self.stats = GenerationStats()
        self.task_types: list[str] = []  # of the records the last generate_instructions returned

    def generate_instructions(self, num_instructions: int = 100, use_mock: bool = True,
                              progress: Progress | None = None) -> list[dict[str, Any]]:
        """The spec's API: `num_instructions` records `{"messages": [...]}` (fewer if the sources run dry)."""
        self.stats = GenerationStats()
        if use_mock:
            return self._generate_mock_data(num_instructions, progress)
        return self._generate_with_llm(num_instructions, progress)

    def _generate_mock_data(self, count: int, progress: Progress | None) -> list[dict[str, Any]]:
        facts, makers = self.templates.facts(self._texts()), self.templates.makers
        pool, kept = RougePool(), list[Example]()
        misses: Counter[str] = Counter()  # consecutive failures per task type; a type gives up at the limit
        bar = progress.add_task("self-instruct (templates)", total=count) if progress else None
        while len(kept) < count:
            open_types = [t for t in TASK_TYPES if t in makers and misses[t] < MISSES_PER_TYPE]
            if not open_types:
                break
            task_type = min(open_types, key=lambda t: self.stats.by_type[t])
            example = make_example(task_type, self.random, facts, makers)
            self.stats.candidates += example is not None
            if example is None or pool.max_score(example.prompt) >= self.rouge_threshold:
                self.stats.rejected_similar += example is not None
                misses[task_type] += 1
                continue
            misses[task_type] = 0
            pool.add(example.prompt)
            kept.append(example)
            self.stats.by_type[task_type] += 1
            if progress and bar is not None:
                progress.advance(bar)
        if not kept:
            raise LLMOpsError("template mode found nothing to build tasks from in the documents (templates for: "
                              f"{', '.join(makers)})")
        return self._records(kept)

    def _workspace(self) -> Workspace:
        if self.workspace is None:
            self.workspace = current_workspace()
        return self.workspace

    def _texts(self) -> list[str]:
        if self.documents is None:
            workspace = self._workspace()
            self.documents, _ = document_texts(workspace, None, workspace.settings.data.max_file_bytes)
        return self.documents

    def _generate_with_llm(self, count: int, progress: Progress | None) -> list[dict[str, Any]]:
        if self.endpoint is None:
            raise LLMOpsError("LLM mode needs an endpoint (base_url and model)")
        bootstrap = Bootstrap(self.endpoint, self.seed_tasks, self.rouge_threshold, self.random.randrange(1 << 30))
        tasks = bootstrap.run(count, progress)
        self.stats.llm = bootstrap.stats
        self.stats.candidates = bootstrap.stats.candidates
        self.stats.rejected_similar = bootstrap.stats.rejected_similar
        examples = [Example("classification" if t.is_classification else "other", t.instruction, t.input, t.output)
                    for t in tasks]
        self.stats.by_type.update(e.task_type for e in examples)
        return self._records(examples)

    def _records(self, examples: list[Example]) -> list[dict[str, Any]]:
        closing = set(self.random.sample(range(len(examples)), round(self.closing_rate * len(examples))))
        self.stats.closings = len(closing)
        self.task_types = [example.task_type for example in examples]
        head = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        records = []
        for index, example in enumerate(examples):
            answer = example.output
            if index in closing:
                phrases = self.templates.closings_zh if is_chinese(answer) else self.templates.closings_en
                answer = f"{answer}{'' if is_chinese(answer) else ' '}{self.random.choice(phrases)}"
            records.append({"messages": [*head, {"role": "user", "content": example.prompt},
                                         {"role": "assistant", "content": answer}]})
        return records

    def save_data(self, data: Sequence[Mapping[str, Any]], path: Path | str) -> Path:
        """The spec's API: validate the records (messages format), write them atomically (a `.json` array or
        `.jsonl`) and register them as the SFT dataset named after the file (`sft_data.json` → `sft_data`).
        A relative `path` is taken from the workspace's root; the file must lie inside data/llmops."""
        check_messages(data, Path(path))
        workspace = self._workspace()
        target = data_file(workspace, str(workspace.root / path))
        publish_dataset(workspace, target.stem, target, data, "sft", "messages")
        return target


def check_messages(data: Sequence[Mapping[str, Any]], path: Path) -> None:
    for index, record in enumerate(data):
        problems = record_problems(record, "messages")
        if problems:
            raise located(path, None, f"[{index}].{problems[0][0]}", problems[0][1])


def workspace_documents(workspace: Workspace) -> list[Path]:
    """`<workspace>/documents` (where `llmops data preset` copies to) when it has files, else none."""
    folder = workspace.documents_dir
    return [folder] if folder.is_dir() and any(folder.rglob("*.*")) else []


def document_texts(workspace: Workspace, documents: Sequence[Path] | None, max_bytes: int,
                   required: bool = True) -> tuple[list[str], list[str]]:
    """The texts of `documents` (default: the workspace's) and the files skipped with their reasons; when
    `required`, none is an error."""
    paths = list(documents or workspace_documents(workspace))
    if required and not paths:
        raise LLMOpsError(f"{workspace.documents_dir}: no documents to build template-mode tasks from (add files "
                          "there or pass them; `llmops data preset` copies the demo shop's)")
    loaded = load_documents(paths, max_bytes)
    return [d.text for d in loaded.documents], loaded.skipped


def seed_tasks_from(path: Path | None, max_bytes: int = MAX_FILE_BYTES) -> list[Task]:
    """Seed tasks (a jsonl file, default: the built-in generic ones) as bootstrap tasks."""
    seeds = GENERIC_SEED_TASKS if path is None else read_seed_tasks(path, max_bytes)
    return [Task(s.instruction, s.input, s.output, s.is_classification) for s in seeds]


def generate_sft_records(workspace: Workspace, num_instructions: int | None = None, *, use_mock: bool = True,
                         documents: Sequence[Path] | None = None, seed_tasks: Path | None = None,
                         templates: TemplateSet[Any] = GENERIC_TEMPLATES, endpoint: LLMEndpoint | None = None,
                         closing_rate: float | None = None, seed: int = 0,
                         progress: Progress | None = None) -> GeneratedInstructions:
    """Generate SFT records (messages format), writing nothing; those whose prompt is held out are dropped.

    Documents default to the workspace's (template mode needs some), seed tasks to the built-in generic ones,
    the template set to the generic one."""
    settings = updated(workspace.settings.data, "self-instruct", num_instructions=num_instructions,
                       closing_rate=closing_rate)
    texts, skipped = document_texts(workspace, documents, settings.max_file_bytes, required=use_mock)
    tasks = seed_tasks_from(seed_tasks, settings.max_file_bytes) if not use_mock else []
    generator = SelfInstructGenerator(
        texts, tasks, templates=templates, system_prompt=settings.system_prompt,
        rouge_threshold=settings.rouge_threshold, closing_rate=settings.closing_rate, seed=seed, endpoint=endpoint)
    records = generator.generate_instructions(settings.num_instructions, use_mock, progress)
    generator.stats.skipped = skipped
    kept = [(record, task_type) for record, task_type, held in
            zip(records, generator.task_types, held_out_flags(workspace, records, "messages"), strict=True)
            if not held]
    return GeneratedInstructions([r for r, _ in kept], [t for _, t in kept], generator.stats)


def publish_sft_records(workspace: Workspace, generated: GeneratedInstructions) -> SelfInstructReport:
    """Write `generated` as `sft/sft_data_<ts>.json` (messages format, sharegpt role/content tags) and register it."""
    path = timestamped_path(workspace, "sft", "sft_data", ".json")
    check_messages(generated.records, path)
    dataset = publish_dataset(workspace, path.stem, path, generated.records, "sft", "messages")
    return SelfInstructReport(path, dataset, generated.stats)


def generate_sft_dataset(workspace: Workspace, num_instructions: int | None = None, *, use_mock: bool = True,
                         documents: Sequence[Path] | None = None, seed_tasks: Path | None = None,
                         templates: TemplateSet[Any] = GENERIC_TEMPLATES, endpoint: LLMEndpoint | None = None,
                         closing_rate: float | None = None, seed: int = 0,
                         progress: Progress | None = None) -> SelfInstructReport:
    """`llmops data self-instruct`: `generate_sft_records`, then `publish_sft_records`."""
    generated = generate_sft_records(workspace, num_instructions, use_mock=use_mock, documents=documents,
                                     seed_tasks=seed_tasks, templates=templates, endpoint=endpoint,
                                     closing_rate=closing_rate, seed=seed, progress=progress)
    return publish_sft_records(workspace, generated)
