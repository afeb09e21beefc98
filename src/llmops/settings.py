"""One typed settings schema for the whole system.

Settings come from the workspace's `llmops.yaml`, then `key.sub=value` overrides. Unknown keys are
rejected with their dotted name; wrong types name the file and the key. Every field is documented
once, here, through its `description`.
"""

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.errors import LLMOpsError
from llmops.fileio import read_text_file, write_text_atomic


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


SectionT = TypeVar("SectionT", bound=_Section)


# Sampling parameters (spec 10.3.2), defined once for the `serve` defaults, the HTTP requests and the engine's
# `Sampling`: finite, in ranges where decoding cannot break. A repetition penalty under 0.01 would blow a seen
# token's logit past float32 (1e-300 is 0 there); `top_k` is also refused above the serving model's vocabulary.
MaxTokens = Annotated[int, Field(ge=1)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
TopK = Annotated[int, Field(ge=0, le=1_000_000)]
RepetitionPenalty = Annotated[float, Field(ge=0.01, le=10, allow_inf_nan=False)]


class DataSettings(_Section):
    tokenizer: str = Field("", description="Tokenizer (HF folder or hub id) used to count CPT chunk tokens; "
                           "empty means the workspace's base model.")
    chunk_size: int = Field(512, ge=16, le=32768, description="CPT chunk size in tokens (spec: 512–2048).")
    chunk_overlap: int = Field(0, ge=0, description="Tokens shared by consecutive chunks of one document.")
    near_dup_threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold for near-duplicates.")
    num_instructions: int = Field(100, ge=1, description="Self-Instruct: instructions to generate.")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="Self-Instruct: reject a candidate whose "
                                   "max ROUGE-L against the pool is at least this.")
    system_prompt: str = Field("", description="System message of SFT samples; empty: none, so training and "
                               "inference both use the chat template's default system prompt.")
    closing_rate: float = Field(0.15, ge=0, le=1, description="Self-Instruct: share of answers that end with a "
                                "polite closing phrase (e.g. 'Hope this helps!', '祝您购物愉快！').")
    max_votes_per_user_per_day: int = Field(0, ge=0, description="Preference export: cap per user and day "
                                            "(0 = no cap).")
    max_file_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="Largest file llmops reads where a user "
                                "names it (datasets, documents, seed tasks, held-out sets); FIFOs, devices and "
                                "sockets are always refused.")
    llm_base_url: str = Field("", description="Self-Instruct LLM mode: base URL of the OpenAI-compatible "
                              "endpoint (the UI uses only this one; the CLI's --base-url replaces it).")
    llm_model: str = Field("", description="Self-Instruct LLM mode: model name at llm_base_url.")
    llm_api_key_env: str = Field("OPENAI_API_KEY", description="Self-Instruct LLM mode: environment variable "
                                 "holding the API key (unset: the key 'EMPTY').")


# Training hyperparameters of a stage (LLaMA-Factory keys of the same name), each documented once here; the
# stage sections below hold the spec's defaults (3.1.3 / 7.2.1, 3.2.3 / 7.2.2, 3.3.3 / 7.2.3, appendix A).
# Unset (None) leaves the key out of the config, so LLaMA-Factory's own default applies.
FinetuningType = Annotated[Literal["lora", "full"], Field(description="lora: train a LoRA adapter (after CPT and "
                           "SFT merged into a full model); full: train every weight, the output is a full model.")]
LoraTarget = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*$", description="LoRA: the modules "
                       "to adapt, comma-separated, or all.")]
LoraRank = Annotated[int, Field(ge=1, description="LoRA rank r.")]
LoraAlpha = Annotated[int, Field(ge=1, description="LoRA alpha: the adapter's update is scaled by alpha / rank.")]
LoraDropout = Annotated[float, Field(ge=0, lt=1, description="LoRA dropout.")]
Epochs = Annotated[int, Field(ge=1, description="Passes over the dataset (max_steps, when set, decides instead).")]
MaxSteps = Annotated[int | None, Field(ge=0, description="Optimizer steps to train; unset or 0: "
                     "num_train_epochs decides.")]
LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Peak learning rate.")]
BatchSize = Annotated[int, Field(ge=1, description="Samples per device and step.")]
Accumulation = Annotated[int, Field(ge=1, description="Steps whose gradients add up to one update (the effective "
                         "batch is batch size × this × devices).")]
Scheduler = Annotated[Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                              "constant_with_warmup"], Field(description="Learning-rate schedule.")]
WarmupSteps = Annotated[int | None, Field(ge=0, description="Steps of learning-rate warmup; unset: none.")]
WarmupRatio = Annotated[float | None, Field(ge=0, le=1, description="Share of the steps spent in warmup "
                        "(instead of warmup_steps); unset: none.")]
WeightDecay = Annotated[float | None, Field(ge=0, allow_inf_nan=False, description="AdamW weight decay; "
                        "unset: 0.")]
MaxGradNorm = Annotated[float | None, Field(ge=0, allow_inf_nan=False, description="Gradient clipping norm; "
                        "unset: LLaMA-Factory's 1.0.")]
LoggingSteps = Annotated[int, Field(ge=1, description="Steps between entries of trainer_log.jsonl (loss, "
                         "learning rate, progress).")]
SaveSteps = Annotated[int | None, Field(ge=1, description="Steps between checkpoints; unset: LLaMA-Factory's 500.")]
Seed = Annotated[int | None, Field(ge=0, description="Random seed; unset: LLaMA-Factory's 42.")]
CutoffLen = Annotated[int, Field(ge=1, description="Tokens per sample; longer samples are cut.")]
PrefBeta = Annotated[float, Field(ge=0, allow_inf_nan=False, description="DPO beta: how far the policy may move "
                     "from the reference model (the KL weight, spec 3.3.3).")]
PrefLoss = Annotated[Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"], Field(
    description="Preference loss (sigmoid is DPO's).")]
PrefFtx = Annotated[float, Field(ge=0, allow_inf_nan=False, description="Weight of an SFT loss on the chosen "
                    "answers added to the preference loss (appendix A); 0: none.")]


class StageTraining(_Section):
    """Hyperparameters every stage has; the stage sections give the stage's defaults."""

    finetuning_type: FinetuningType = "lora"
    lora_target: LoraTarget = "all"
    lora_rank: LoraRank
    lora_alpha: LoraAlpha
    lora_dropout: LoraDropout = 0.05
    num_train_epochs: Epochs
    max_steps: MaxSteps = None
    learning_rate: LearningRate
    per_device_train_batch_size: BatchSize
    gradient_accumulation_steps: Accumulation
    lr_scheduler_type: Scheduler = "cosine"
    warmup_steps: WarmupSteps = None
    warmup_ratio: WarmupRatio = None
    weight_decay: WeightDecay = None
    max_grad_norm: MaxGradNorm = None
    logging_steps: LoggingSteps = 10
    save_steps: SaveSteps = None
    seed: Seed = None
    cutoff_len: CutoffLen


class CPTTraining(StageTraining):
    """CPT (stage pt) on plain text: spec 3.1.3 and 7.2.1."""

    lora_rank: LoraRank = 16
    lora_alpha: LoraAlpha = 32
    num_train_epochs: Epochs = 1
    learning_rate: LearningRate = 1e-5
    per_device_train_batch_size: BatchSize = 2
    gradient_accumulation_steps: Accumulation = 8
    warmup_steps: WarmupSteps = 100
    save_steps: SaveSteps = 500
    cutoff_len: CutoffLen = 2048


class SFTTraining(StageTraining):
    """SFT on chat samples: spec 3.2.3 and 7.2.2."""

    lora_rank: LoraRank = 8
    lora_alpha: LoraAlpha = 16
    num_train_epochs: Epochs = 3
    learning_rate: LearningRate = 5e-5
    per_device_train_batch_size: BatchSize = 4
    gradient_accumulation_steps: Accumulation = 4
    cutoff_len: CutoffLen = 1024


class DPOTraining(StageTraining):
    """DPO on preference pairs: spec 3.3.3, 7.2.3 and appendix A."""

    lora_rank: LoraRank = 8
    lora_alpha: LoraAlpha = 16
    num_train_epochs: Epochs = 1
    learning_rate: LearningRate = 5e-6
    per_device_train_batch_size: BatchSize = 2
    gradient_accumulation_steps: Accumulation = 8
    warmup_steps: WarmupSteps = 100
    max_grad_norm: MaxGradNorm = 1.0
    save_steps: SaveSteps = 100
    cutoff_len: CutoffLen = 1024
    pref_beta: PrefBeta = 0.1
    pref_loss: PrefLoss = "sigmoid"
    pref_ftx: PrefFtx = 0.0


class TrainSettings(_Section):
    base_model: str = Field("Qwen/Qwen2-1.5B", description="Base model for CPT (HF folder or hub id).")
    template: str = Field("qwen", description="LLaMA-Factory chat template of SFT and DPO (CPT reads plain text "
                          "with its `default` template).")
    llamafactory_cli: str = Field("llamafactory-cli", description="The LLaMA-Factory command to run; the default "
                                  "is the one installed beside the Python that runs llmops.")
    stop_grace_s: float = Field(20.0, gt=0, description="Stopping a run: seconds to wait after SIGINT and again "
                                "after SIGTERM before SIGKILL.")
    log_tail_lines: int = Field(40, ge=1, description="Lines of the log kept as the error of a failed run.")
    llama_cpp: str = Field("", description="llama.cpp source folder (convert_hf_to_gguf.py, convert_lora_to_gguf.py, "
                           "gguf-py/) of `llmops models export --gguf`; empty: $LLMOPS_LLAMA_CPP, else the copy "
                           "benchmarks/_llama_cpp.py unpacks into the llmops cache.")
    cpt: CPTTraining = Field(CPTTraining(), description="CPT hyperparameters (spec 3.1.3).")
    sft: SFTTraining = Field(SFTTraining(), description="SFT hyperparameters (spec 3.2.3).")
    dpo: DPOTraining = Field(DPOTraining(), description="DPO hyperparameters (spec 3.3.3), also the loop's.")


class ServeSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the gateway binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the gateway listens on.")
    max_batch_size: int = Field(32, ge=1, description="Continuous batching: most requests decoded together.")
    batch_wait_ms: float = Field(5.0, ge=0, description="Continuous batching: when idle, wait for requests that "
                                 "arrive less than this apart to start together (at most 10× this).")
    max_new_tokens: MaxTokens = Field(128, description="Default and upper limit of generated tokens.")
    temperature: Temperature = Field(0.7, description="Default sampling temperature, 0–2; 0 is greedy "
                                     "(spec 10.3.2).")
    top_p: TopP = Field(0.9, description="Default nucleus sampling, in (0, 1] (spec 10.3.2).")
    top_k: TopK = Field(50, description="Default top-k sampling; 0 is off (spec 10.3.2).")
    repetition_penalty: RepetitionPenalty = Field(1.1, description="Default repetition penalty, 0.01–10 "
                                                  "(spec 10.3.2).")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest accepted HTTP request body.")
    body_timeout_s: float = Field(10.0, gt=0, le=600, description="Seconds a client has to send a whole request "
                                  "body; a slower or truncated one is answered 408.")
    max_prompt_chars: int = Field(8000, ge=1, description="Longest accepted prompt (all messages together).")
    leaderboard_max_rounds: int = Field(1000, ge=1, description="Most bootstrap resamples a leaderboard request "
                                        "may ask for (`rounds`); more is refused with 400.")
    upstream_api_key_env: str = Field("LLMOPS_UPSTREAM_API_KEY", description="Environment variable of the API key "
                                      "sent as a bearer token to the upstream servers of versions with an "
                                      "upstream_url (vLLM `--api-key`, `llamafactory-cli api`'s API_KEY); unset or "
                                      "empty: none is sent.")
    upstream_timeout_s: float = Field(120.0, gt=0, le=3600, description="Seconds the gateway waits for an upstream "
                                      "server to connect, to answer, and between two pieces of a stream; a stalled "
                                      "one is then a failed request of its version (502, or an error event).")


class RolloutStage(_Section):
    """One canary stage: its traffic share, and how long and how many candidate requests before it may pass."""

    traffic: float = Field(gt=0, le=1, description="The candidate's share of production traffic, in (0, 1].")
    min_hours: float | None = Field(None, ge=0, allow_inf_nan=False, description="Hours the stage lasts at least; "
                                    "unset: loop.stage_min_minutes.")
    min_requests: int | None = Field(None, ge=0, description="Candidate requests the stage needs; unset: "
                                     "loop.stage_min_requests.")

    @model_validator(mode="before")
    @classmethod
    def _share_alone(cls, value: Any) -> Any:
        return {"traffic": value} if isinstance(value, int | float) and not isinstance(value, bool) else value


class LoopSettings(_Section):
    min_samples: int = Field(100, ge=1, description="DPO trigger: new valid pairs needed (spec 6.3.2).")
    days_threshold: float = Field(7.0, ge=0, description="DPO trigger: days since the last DPO run.")
    gate_lower_bound: float = Field(0.5, ge=0, le=1, description="Promotion gate: the win rate's 95% interval "
                                    "lower bound must exceed this.")
    rollout_stages: list[RolloutStage] = Field(
        [RolloutStage(traffic=0.05, min_hours=24), RolloutStage(traffic=0.2, min_hours=48),
         RolloutStage(traffic=0.5, min_hours=72), RolloutStage(traffic=1.0, min_hours=0)],
        description="Canary stages in order (spec 9.3.1): {traffic, min_hours, min_requests} each, or a "
                    "traffic share alone (the old form), whose minimums are stage_min_minutes and "
                    "stage_min_requests; passing the last stage promotes.")
    stage_min_requests: int = Field(100, ge=0, description="Requests a stage needs before it may advance, where "
                                    "the stage sets no min_requests.")
    stage_min_minutes: float = Field(0.0, ge=0, description="Minutes a stage lasts at least, where the stage "
                                     "sets no min_hours.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Guardrail: roll back above this error rate.")
    max_latency_p99_ms: float = Field(2000.0, gt=0, description="Guardrail: roll back above this p99 latency.")
    max_feedback_drop: float = Field(0.2, ge=0, le=1, description="Guardrail: roll back when the candidate's share "
                                     "of thumbs-up falls this fraction below production's.")
    target_samples: int = Field(300, ge=1, description="Collection plan (spec 6.3.1): pairs a cycle aims for.")
    optimal_samples: int = Field(500, ge=1, description="Collection plan (spec 6.3.1): the best number of pairs.")
    guardrail_min_requests: int = Field(10, ge=1, description="Guardrails judge a stage only once the candidate "
                                        "served this many requests in it.")
    eval_set: str = Field("data/llmops/eval/heldout.jsonl", description="Held-out evaluation prompts (jsonl of "
                          "{prompt, reference}), relative to the workspace, used when a file is there; otherwise "
                          "(or when empty) the newest eval set registered by `llmops data eval-set`. No training "
                          "set contains the prompts of either.")
    eval_samples: int = Field(1, ge=1, description="Answers sampled per held-out prompt and model.")
    bootstrap_samples: int = Field(2000, ge=100, description="Bootstrap resamples for the win rate's interval.")
    judge: Literal["reference", "llm", "human"] = Field("reference", description="Judge of `loop tick`'s "
                                                        "evaluation: reference (ROUGE-L), llm or human arena votes.")
    judge_url: str = Field("", description="LLM judge: base URL of an OpenAI-compatible endpoint.")
    judge_model: str = Field("", description="LLM judge: model name at judge_url.")
    judge_api_key_env: str = Field("OPENAI_API_KEY", description="LLM judge: environment variable of the API key.")
    dpo_overrides: list[str] = Field([], description="LLaMA-Factory config overrides (key=value) of the loop's "
                                     "DPO runs on top of train.dpo, for keys it has not, e.g. "
                                     "deepspeed=ds_z2.json.")
    retry_recipes: list[dict[str, int | float | str | bool]] = Field(
        [], description="Spec 6.1 (no improvement → adjust → DPO): changes to train.dpo tried in turn, one per "
                        "retry, when the promotion gate rejects a candidate, on the same preference data, e.g. "
                        "[{num_train_epochs: 4}, {pref_ftx: 1.0, learning_rate: 5e-5}]; after the last one "
                        "the loop waits for new data.")
    objective: Literal["dpo", "kto", "auto"] = Field(
        "dpo", description="What the loop trains on: dpo (the arena's preference pairs), kto (every vote and thumb "
                           "as a desirable/undesirable example, LLaMA-Factory's KTO, with train.dpo's settings) or "
                           "auto (kto when the pairs are fewer than auto_pair_share of the usable votes and thumbs, "
                           "else dpo). The trigger counts the chosen objective's examples.")
    auto_pair_share: float = Field(0.5, ge=0, le=1, description="objective auto: train KTO when the valid pairs are "
                                   "fewer than this share of the votes and thumbs that give KTO examples.")

    @field_validator("retry_recipes")
    @classmethod
    def _check_recipes(cls, recipes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each recipe's keys are train.dpo's and its values valid there (typed as there: `5e-5` is a number)."""
        checked = []
        for number, recipe in enumerate(recipes, 1):
            unknown = sorted(set(recipe) - set(DPOTraining.model_fields))
            if unknown:
                raise ValueError(f"recipe {number}: {', '.join(unknown)}: not a train.dpo setting")
            try:
                typed = DPOTraining.model_validate(recipe)
            except ValidationError as exc:
                raise ValueError(f"recipe {number}: {_describe(exc, 'train.dpo')}") from exc
            checked.append({key: getattr(typed, key) for key in recipe})
        return checked

    def stage(self, index: int) -> RolloutStage:
        """Rollout stage `index` with its minimums filled in (a stage without its own gets the global ones)."""
        stage = self.rollout_stages[index]
        hours = self.stage_min_minutes / 60.0 if stage.min_hours is None else stage.min_hours
        requests = self.stage_min_requests if stage.min_requests is None else stage.min_requests
        return RolloutStage(traffic=stage.traffic, min_hours=hours, min_requests=requests)

    @property
    def traffic_shares(self) -> list[float]:
        return [stage.traffic for stage in self.rollout_stages]


_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_PASSWORD_HASH = re.compile(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
_ORIGIN = re.compile(r"https?://[^/\s?#@]+")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f:.]*:[0-9a-f:.]*")


class AuthSettings(_Section):
    users: dict[str, str] = Field({}, description="Users who may sign in besides `admin` (whose password is the "
                                  "workspace's admin token, .llmops/admin_token): user name → password hash, "
                                  "written by `llmops auth add-user NAME`.")
    open_arena: bool = Field(False, description="Arena battles and votes need no sign-in: the HTTP routes are "
                             "open and the voters' page is served at /arena (the rest of the UI still needs it).")
    allowed_origins: list[str] = Field([], description="Origins (scheme://host[:port]) besides the gateway's own "
                                       "that a browser may call the UI, /arena and the admin routes from; "
                                       "behind a TLS proxy add the public https:// origin.")
    allowed_hosts: list[str] = Field([], description="Host names the UI, /arena and the admin routes answer to "
                                     "besides localhost, 127.0.0.1, ::1, serve.host (when it is one address) "
                                     "and the hosts of auth.allowed_origins, e.g. the TLS proxy's public name; "
                                     "any other Host header is refused (against DNS rebinding).")
    sign_in_attempts: int = Field(5, ge=1, le=1000, description="Failed sign-ins of one user (UI login or HTTP "
                                  "Basic) within a minute before that user is refused without a password "
                                  "check for sign_in_cooldown_s; a successful sign-in resets the count.")
    sign_in_cooldown_s: float = Field(60.0, gt=0, le=86400, description="First cooldown after sign_in_attempts "
                                      "failures; it doubles with each further lockout (at most 16×).")

    @field_validator("users")
    @classmethod
    def _check_users(cls, users: dict[str, str]) -> dict[str, str]:
        for name, encoded in users.items():
            if name == "admin" or not _USER_NAME.fullmatch(name):
                raise ValueError(f"user {name!r}: expected 1–64 letters, digits, '_', '.', '@' or '-' "
                                 "(and not 'admin', whose password is the admin token)")
            if not _PASSWORD_HASH.fullmatch(encoded):
                raise ValueError(f"user {name!r}: not a password hash (write one with `llmops auth add-user`)")
        return users

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r}: expected scheme://host[:port], e.g. https://llm.example.com")
        return [origin.lower() for origin in origins]

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        names = [host.strip().lower().strip("[]").rstrip(".") for host in hosts]
        for given, name in zip(hosts, names, strict=True):
            if not _HOST.fullmatch(name):
                raise ValueError(f"{given!r}: expected a host name or address without scheme or port, "
                                 "e.g. llm.example.com")
        return names


class Settings(_Section):
    database_url: str = Field("", description="SQLAlchemy URL of the store; empty means the workspace's SQLite.")
    database_busy_timeout_s: float = Field(30.0, gt=0, le=600, description="SQLite: seconds a statement waits "
                                           "for another connection's lock before failing (the gateway then "
                                           "answers 503 with Retry-After).")
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    serve: ServeSettings = ServeSettings()
    loop: LoopSettings = LoopSettings()
    auth: AuthSettings = AuthSettings()


def _describe(error: ValidationError, source: str, overrides: Sequence[str] = ()) -> LLMOpsError:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{_origin(key, source, overrides)}: {key}: {message}")
    return LLMOpsError("\n".join(problems))


def _origin(key: str, source: str, overrides: Sequence[str]) -> str:
    """Where the setting `key` came from: the last `--set` override of it (or of a section or field that holds
    it), else `source`."""
    for text in reversed(overrides):
        name = text.partition("=")[0].strip()
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return f"--set {_shown(text)}"
    return source


def updated(section: SectionT, source: str, **values: Any) -> SectionT:
    """A copy of a settings section with `values` (None: keep the setting) checked like the settings file's;
    problems name `source` and the field."""
    given = {key: value for key, value in values.items() if value is not None}
    try:
        return type(section).model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        raise _describe(exc, source) from exc


def _shown(text: str, limit: int = 80) -> str:
    """`text` quoted for an error message, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value parsed as YAML scalar or list)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise LLMOpsError(f"override {_shown(text)}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except RecursionError as exc:
        raise LLMOpsError(f"override {_shown(text)}: value is not valid YAML: nested too deeply") from exc
    except yaml.YAMLError as exc:
        raise LLMOpsError(f"override {_shown(text)}: value is not valid YAML: {exc}") from exc
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with every `key.sub=value` override applied."""
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise LLMOpsError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def read_settings_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = read_text_file(path, what="settings file")
    try:
        raw = yaml.safe_load(text)
    except RecursionError as exc:
        raise LLMOpsError(f"{path}: not valid YAML: nested too deeply") from exc
    except yaml.YAMLError as exc:
        raise LLMOpsError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LLMOpsError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return raw


def load_settings(path: Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from a YAML file (missing file = defaults) with `key.sub=value` overrides applied."""
    raw = read_settings_file(path) if path else {}
    overrides = overrides or []
    return parse_settings(apply_overrides(raw, overrides), str(path) if path else "settings", overrides)


def parse_settings(raw: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Settings:
    """Validate a mapping of settings; problems name the dotted key and where it came from: the `--set` override
    of `overrides` that set it, else `source`."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise _describe(exc, source, overrides) from exc


def settings_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(), sort_keys=False, allow_unicode=True)


def save_settings(settings: Settings, path: Path) -> None:
    """Write the resolved settings (atomically), e.g. beside an artifact they produced."""
    write_text_atomic(path, settings_yaml(settings))
