"""Typed, validated configuration: ``params.yaml`` -> :class:`Params`.

Every section of ``params.yaml`` maps to one model below, and every section must be present (a
profile is a complete file). Validation happens on load, before any stage does work: an unknown key
(with the closest valid one suggested), a value out of range, NaN or infinite, or not among the
allowed choices raises :class:`~hybrid_repro.errors.HybridReproError` naming the key and what is
allowed; so do a key given twice, invalid UTF-8 and NUL bytes in the file.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import decode_text
from hybrid_repro.paths import OutputPath, check_disjoint_outputs, check_foreign_outputs, check_output_path
from hybrid_repro.sources.specs import SPECS as SOURCE_SPECS

DEFAULT_PARAMS = Path("params.yaml")
PROFILES = ("demo", "me5-xquad", "paper-xlmr", "paper-labse", "mini")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# A pinned hub revision is a full commit hash: branches and tags move, so "main" or "v1.0" would not pin anything.
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
# numpy's seeding (training.checkpoint.seed_everything) takes 32-bit seeds; a larger one would be silently
# reduced modulo 2**32 and collide with a small one.
SEED_LIMIT = 2**32
# The LAReQA sets fetched by pipelines/lareqa/dvc.yaml; synth-r is written by the translate stage.
FETCHED_DATASETS = ("xquad-r", "mlqa-r")
EVAL_DATASETS = ("synth-r", *FETCHED_DATASETS)
# No encoder this package builds or loads needs more: the scratch encoder builds exactly the positions the two
# maximum lengths ask for, and the paper's hub encoders (XLM-R, LaBSE) have 512. A larger value is a typo that
# would otherwise allocate a position table of that size. Hub models are also checked against their own limit.
MAX_TEXT_LENGTH = 8192
# Every step adds a row to the step and batch logs that each checkpoint carries, and the paper's runs are
# thousands of steps: a bound of a million keeps a typo such as 1e18 from planning a run that never ends.
MAX_TRAIN_STEPS = 1_000_000


def _check_commit_hash(revision: Optional[str], key: str) -> None:
    if revision is not None and not COMMIT_HASH.fullmatch(revision):
        raise ValueError(f"{key} {revision!r} must be a full 40-character commit hash (lower-case hex), "
                         "not a branch or tag: those move, so they pin nothing")


class Section(BaseModel):
    """Base for every section: unknown keys are errors, values are immutable after load."""

    # validate_default: a default goes through the same checks as a written value (an output path left at its
    # default that is a symbolic link out of the project is refused like the same path written explicitly).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)


SectionT = TypeVar("SectionT", bound=Section)


class SyntheticConfig(Section):
    """Shape of the synthetic parallel QA corpus (see ``hybrid_repro.data.synthetic``).

    ``train_paragraphs`` maps each training dataset to its number of paragraphs; every paragraph
    yields ``questions_per_paragraph`` examples (questions on distinct sentences).
    """

    n_topics: int = Field(24, ge=2)
    entities_per_topic: int = Field(10, ge=1)
    train_paragraphs: dict[str, int] = Field(
        default_factory=lambda: {"synth-qa": 500, "synth-faq": 200, "synth-kw": 60}
    )
    val_paragraphs: int = Field(40, ge=1)
    eval_articles: int = Field(12, ge=1)
    paragraphs_per_article: int = Field(5, ge=1)
    sentences_per_paragraph: tuple[int, int] = (4, 6)
    questions_per_paragraph: int = Field(3, ge=1)
    question_keep_prob: float = Field(0.6, gt=0, le=1)
    question_paraphrase_prob: float = Field(0.5, ge=0, le=1)
    question_noise_words: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _check_shape(self) -> "SyntheticConfig":
        low, high = self.sentences_per_paragraph
        if not 1 <= low <= high:
            raise ValueError(f"sentences_per_paragraph {low, high}: need 1 <= min <= max")
        if self.questions_per_paragraph > low:
            raise ValueError(
                f"questions_per_paragraph {self.questions_per_paragraph} exceeds the minimum "
                f"sentences_per_paragraph {low}: questions need distinct answer sentences"
            )
        empty = [name for name, count in self.train_paragraphs.items() if count < 1]
        if not self.train_paragraphs or empty:
            raise ValueError(f"train_paragraphs needs at least one paragraph per dataset; empty: {empty or 'all'}")
        return self


class XquadConfig(Section):
    """XQuAD as parallel training data (``data.source: xquad``; rules in ``hybrid_repro.data.xquad``)."""

    # Whole articles held out, in English only, for the validation loss (XQuAD has 48).
    val_articles: int = Field(6, ge=1, le=47)
    # paragraph: the best BM25 non-answer sentence of the question's paragraph (then article, then split);
    # bm25: the best BM25 non-answer sentence of the whole split.
    negatives: Literal["paragraph", "bm25"] = "paragraph"


class DataConfig(Section):
    """The ``data`` stage: where the source corpus comes from."""

    # paper: the sources in the ``sources`` section, fetched by pipelines/paper/dvc.yaml (docs/data.md).
    source: Literal["synthetic", "xquad", "paper"] = "synthetic"
    synthetic: SyntheticConfig = SyntheticConfig()
    xquad: XquadConfig = XquadConfig()
    out_dir: OutputPath = Path("data/source")


class SourceConfig(Section):
    """One of the paper's sources (``hybrid_repro.sources.specs.SPECS`` names them).

    ``revision`` (hub sources) or ``sha256`` (sources at a URL) pins it and has no default
    (``hybrid-repro pin`` fills the hub ones), except for an archive no public checksum exists for
    (EntityQuestions): there ``sha256: null`` records the digest at the first download and refuses
    a later download that differs (docs/data.md). ``max_pairs`` keeps
    the first pairs in the source's order (None: all). ``negatives``: ``given`` keeps the source's
    own (Mr. TyDi, mMARCO), ``bm25`` or ``random`` mines one from the same dataset.
    """

    revision: Optional[str] = None
    sha256: Optional[str] = None
    max_pairs: Optional[int] = Field(None, ge=1)
    negatives: Literal["given", "bm25", "random"]


class SourcesConfig(Section):
    """The ``source@NAME`` stages of pipelines/paper/dvc.yaml: fetch, normalise, shard.

    Each source is written to ``out_dir/NAME`` as Parquet shards of at most ``shard_rows`` rows with a
    manifest (hybrid_repro/sources/shards.py). Hugging Face caches live under ``cache_dir``.
    """

    cache_dir: Path = Path(".cache/huggingface")
    out_dir: OutputPath = Path("data/sources")
    shard_rows: int = Field(250_000, ge=1)
    datasets: dict[str, SourceConfig] = Field(min_length=1)
    # The lock `hybrid-repro pin` wrote (it sets this key): the models and the hub files are checked against the
    # sizes and hashes it records. None: no lock, no check beyond the hub client's own.
    pin_lock: Optional[Path] = None

    @model_validator(mode="after")
    def _check_pins(self) -> "SourcesConfig":
        unknown = sorted(set(self.datasets) - set(SOURCE_SPECS))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; known: {', '.join(SOURCE_SPECS)}")
        problems = []
        for name, source in self.datasets.items():
            spec = SOURCE_SPECS[name]
            pin, other = (source.sha256, source.revision) if spec.kind == "url" else (source.revision, source.sha256)
            pattern = SHA256 if spec.kind == "url" else COMMIT_HASH
            key = f"sources.datasets.{name}.{spec.pin_key}"
            if pin is None and not spec.pinned_on_first_download:
                problems.append(f"{key} is required and has no default: set it to {spec.lookup_hint} (docs/data.md)")
            elif pin is not None and not pattern.fullmatch(pin):
                digits = 64 if spec.kind == "url" else 40
                problems.append(f"{key} {pin!r} must be {digits} lower-case hex digits (a branch or tag pins nothing)")
            if other is not None:
                problems.append(f"sources.datasets.{name}: {spec.name} is pinned by {spec.pin_key} only")
            if source.negatives == "given" and not spec.gives_negatives:
                problems.append(f"sources.datasets.{name}.negatives: {name} ships no negatives; use bm25 or random")
        if problems:
            # One line per key: the message is printed under the section's name.
            raise ValueError("\n    ".join(["every pin must be set:", *problems]))
        return self

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``, or a clear error listing the configured ones."""
        if name not in self.datasets:
            raise HybridReproError(f"unknown source {name!r}; sources.datasets defines: {', '.join(self.datasets)}")
        return self.datasets[name]


class LangIdCheckConfig(Section):
    """Language identification of a sample of every translated output (``py3langid``).

    Per (dataset, target language), up to ``sample_size`` translated texts of at least
    ``min_chars`` characters are identified; the stage fails when the share identified as another
    language exceeds ``max_wrong_rate``. The synthetic languages of the lexicon backend cannot be
    identified, so the check is skipped there (and the metrics say so).
    """

    sample_size: int = Field(200, ge=1)
    min_chars: int = Field(20, ge=1)
    max_wrong_rate: float = Field(0.1, ge=0, le=1)


class TranslateConfig(Section):
    """The ``translate`` stage: render the source corpus into every language.

    The neural backends (``nllb``, ``m2m100``, ``marian``) split texts into sentences, translate
    each distinct sentence once, longest first in batches of ``batch_size``, with deterministic beam
    search (``num_beams``) and at most ``ceil(max_length_ratio * source tokens) + max_length_extra``
    new tokens; sources are cut at ``max_input_tokens`` (counted in the metrics). Translations are
    cached under ``cache_dir``. ``engine: ctranslate2`` runs the same checkpoint through
    CTranslate2 (optional extra ``ct2``), converted once into ``cache_dir``.
    ``parallel``: the corpus is already in every language (``data.source: xquad``); the stage only
    selects languages.
    """

    backend: Literal["lexicon", "nllb", "m2m100", "marian", "parallel"] = "lexicon"
    engine: Literal["transformers", "ctranslate2"] = "transformers"
    model_name: Optional[str] = None
    model_revision: Optional[str] = None
    batch_size: int = Field(16, ge=1)
    num_beams: int = Field(4, ge=1)
    max_length_ratio: float = Field(2.0, gt=0)
    max_length_extra: int = Field(10, ge=0)
    max_input_tokens: int = Field(512, ge=8)
    cache_dir: Path = Path(".cache/translation")
    langid: LangIdCheckConfig = LangIdCheckConfig()
    train_languages: tuple[str, ...]
    # The languages of the translated evaluation set (synth-r); only data.source synthetic has one.
    eval_languages: tuple[str, ...] = ()
    low_resource: dict[str, float] = Field(default_factory=dict)
    out_dir: OutputPath = Path("data/translated")
    metrics_path: OutputPath = Path("metrics/translate.json")

    @model_validator(mode="after")
    def _check_languages(self) -> "TranslateConfig":
        if not self.train_languages:
            raise ValueError("train_languages must name at least one language")
        machine_translation = self.backend in ("nllb", "m2m100", "marian")
        if not machine_translation and (self.model_name or self.model_revision):
            raise ValueError("model_name and model_revision are only used by the nllb, m2m100 and marian backends")
        if not machine_translation and self.engine != "transformers":
            raise ValueError("engine is only used by the nllb, m2m100 and marian backends")
        if machine_translation and not self.model_revision:
            raise ValueError(f"backend {self.backend!r} needs model_revision pinned to a commit hash")
        _check_commit_hash(self.model_revision, "model_revision")
        if self.backend == "marian" and not self.model_name:
            raise ValueError("backend 'marian' needs model_name (an OPUS-MT checkpoint with >>xxx<< target tokens)")
        if self.backend == "parallel" and (self.eval_languages or self.low_resource):
            raise ValueError("backend 'parallel' writes training data only: leave eval_languages empty (evaluation "
                             "reads evaluate.datasets) and low_resource unset")
        for lang, share in self.low_resource.items():
            if lang not in self.train_languages:
                raise ValueError(f"low_resource names {lang!r}, which is not in train_languages")
            if not 0 < share <= 1:
                raise ValueError(f"low_resource[{lang!r}] = {share}: the kept share must be in (0, 1]")
        return self


class ScratchModelConfig(Section):
    """A small transformer built from a config (demo), with a tokenizer trained on the corpus."""

    vocab_size: int = Field(4000, ge=100)
    hidden_size: int = Field(128, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=8)
    # Hidden and attention dropout. Drawing the masks is a large share of a CPU step for a model
    # this small, so the demo may turn it off.
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "ScratchModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        return self


class ModelConfig(Section):
    """The dual encoder: one shared encoder for queries and passages."""

    source: Literal["scratch", "hub", "local"] = "scratch"
    name: Optional[str] = None
    revision: Optional[str] = None
    # source 'local': a Hugging Face checkpoint directory, e.g. the one `hybrid-repro base-model` writes.
    path: Optional[Path] = None
    scratch: ScratchModelConfig = ScratchModelConfig()
    # cls: the first token's last hidden state; mean: average over real tokens; pooler: the model's own pooler
    # head on the first token (BERT's dense + tanh), the head LaBSE was trained with.
    pooling: Literal["cls", "mean", "pooler"] = "cls"
    normalize: bool = True
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    max_query_length: int = Field(32, ge=4, le=MAX_TEXT_LENGTH)
    max_passage_length: int = Field(64, ge=4, le=MAX_TEXT_LENGTH)

    @model_validator(mode="after")
    def _hub_needs_pin(self) -> "ModelConfig":
        if self.source == "hub" and not (self.name and self.revision):
            raise ValueError("source 'hub' needs both name and a pinned revision (a commit hash)")
        _check_commit_hash(self.revision, "revision")
        if (self.source == "local") != (self.path is not None):
            raise ValueError("path names the checkpoint directory of source 'local' and is used by no other source")
        return self


class LossConfig(Section):
    """InfoNCE over in-batch negatives (PAPER.md Eq. 1)."""

    impl: Literal["auto", "triton", "torch"] = "auto"
    # Cosine logits lie in [-1, 1]: a temperature above 1 flattens them further and one far above it leaves the loss
    # at ln(batch) on every step with nothing learnt (1e30 was accepted once); below 1e-3 the logits reach 1e3.
    temperature: float = Field(0.05, ge=1e-3, le=1.0)
    positives_as_negatives: bool = False
    symmetric: bool = False
    reduction: Literal["mean", "sum"] = "mean"


class SamplerConfig(Section):
    """Batch composition shared by every run; the strategy itself is per run."""

    batch_size: int = Field(32, ge=2)
    dataset_mixing: Literal["proportional", "uniform"] = "proportional"


class TrainConfig(Section):
    """Optimisation and checkpointing."""

    # Below 1e-7 AdamW moves no weight measurably in a run's length: the run would look fine and learn nothing.
    lr: float = Field(5e-4, ge=1e-7, le=1.0)
    # AdamW's decay is decoupled (lr * weight_decay of every weight per step): far above 1 it shrinks the weights
    # toward 0 faster than the loss moves them.
    weight_decay: float = Field(0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(1, ge=1)
    max_steps: Optional[int] = Field(None, ge=1, le=MAX_TRAIN_STEPS)
    # A clip far below the gradient's norm leaves AdamW's updates at m / eps (eps 1e-8): nothing would move.
    grad_clip: Optional[float] = Field(1.0, ge=1e-3)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    eval_every: int = Field(50, ge=1)
    # Validation batches are drawn from val.jsonl in these languages (None: the corpus's source language only,
    # as the paper validates on English SQuADShifts) with this monolingual share, the same for every run, so the
    # validation loss (early stopping, best weights) is one yardstick whatever the run's strategy.
    val_languages: Optional[tuple[str, ...]] = None
    val_mono_probability: float = Field(1.0, ge=0, le=1)
    patience: Optional[int] = Field(None, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    log_every: int = Field(10, ge=1)
    num_threads: Optional[int] = Field(None, ge=1)
    checkpoint_dir: OutputPath = Path("checkpoints")
    model_dir: OutputPath = Path("models")
    metrics_dir: OutputPath = Path("metrics/train")


class EvaluateConfig(Section):
    """Zero-shot LAReQA-style evaluation."""

    # synth-r: the synthetic corpus's evaluation set, written by the translate stage; the others are fetched.
    datasets: tuple[Literal[EVAL_DATASETS], ...] = Field(("synth-r",), min_length=1)  # type: ignore[valid-type]
    candidate_text: Literal["sentence", "sentence+context"] = "sentence"
    batch_size: int = Field(128, ge=1)
    cache_dir: OutputPath = Path(".cache/embeddings")
    out_dir: OutputPath = Path("results")


class ReportConfig(Section):
    """The report: runs grouped by strategy over seeds, paired significance, paper values beside ours."""

    out_dir: OutputPath = Path("reports")
    # The unchanged (zero-shot) encoder's results, laid out like results/RUN (<dataset>/metrics.json for every
    # dataset in evaluate.datasets), shown as the first row; None: no such row. Keep it under evaluate.out_dir so
    # the report stage's DVC dependency on results/ covers it.
    baseline_results: Optional[Path] = None
    baseline_label: str = "zero-shot encoder"
    # Paired sign-flip tests on per-query AP between strategies: family-wise level (after Holm's correction)
    # and random sign-flip resamples per test (the smallest attainable two-sided p is 2 / (permutations + 1)).
    significance_level: float = Field(0.05, gt=0, lt=1)
    permutations: int = Field(9999, ge=99)


class RunConfig(Section):
    """One row of the paper's tables: a batch strategy (and alpha for hybrid)."""

    strategy: Literal["x-x-mono", "x-y", "hybrid"]
    alpha: Optional[float] = None
    seed: Optional[int] = Field(None, ge=0, lt=SEED_LIMIT)

    @field_validator("alpha", mode="before")
    @classmethod
    def _alpha_in_unit_interval(cls, value: Any) -> Any:
        # One message for every bad alpha (out of range, NaN, infinite, not a number).
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and 0 <= value <= 1):
            raise ValueError(f"alpha must be a number in [0, 1], got {value!r}")
        return value

    @model_validator(mode="after")
    def _alpha_for_hybrid(self) -> "RunConfig":
        if self.strategy == "hybrid" and self.alpha is None:
            raise ValueError("strategy 'hybrid' needs alpha in [0, 1]")
        if self.strategy != "hybrid" and self.alpha is not None:
            raise ValueError(f"alpha is only used by strategy 'hybrid', not {self.strategy!r}")
        return self

    @property
    def mono_probability(self) -> float:
        """Probability that a batch is monolingual: 1 for x-x-mono, 0 for x-y, alpha for hybrid."""
        return {"x-x-mono": 1.0, "x-y": 0.0}.get(self.strategy, self.alpha)  # type: ignore[return-value]


class Params(Section):
    """The whole of ``params.yaml``."""

    # A profile is a complete file: no section has a default, so a missing one is an error rather than
    # silently replaced by values the file does not show.
    profile: Literal[PROFILES]  # type: ignore[valid-type]
    seed: int = Field(ge=0, lt=SEED_LIMIT)
    data: DataConfig
    translate: TranslateConfig
    model: ModelConfig
    loss: LossConfig
    sampler: SamplerConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    report: ReportConfig
    runs: dict[str, RunConfig]
    # Only in profiles with data.source: paper (the paper's sources); the demo needs none.
    sources: Optional[SourcesConfig] = None

    @model_validator(mode="after")
    def _sources_for_paper_data(self) -> "Params":
        if (self.data.source == "paper") != (self.sources is not None):
            raise ValueError("data.source 'paper' needs the sources section, and only it uses one")
        return self

    @model_validator(mode="after")
    def _check_validation_languages(self) -> "Params":
        languages = self.train.val_languages
        if languages is not None:
            unknown = [lang for lang in languages if lang not in self.translate.train_languages]
            if not languages or unknown:
                raise ValueError(f"train.val_languages must be a non-empty subset of translate.train_languages; "
                                 f"not training languages: {unknown}")
        if (languages is None or len(set(languages)) == 1) and self.train.val_mono_probability < 1:
            raise ValueError("validation in one language (train.val_languages unset means the source language only) "
                             "can form monolingual batches only: set train.val_mono_probability to 1")
        return self

    @model_validator(mode="after")
    def _check_source_and_backend(self) -> "Params":
        # A parallel corpus needs no translation, and only a parallel corpus can go without one.
        if (self.data.source == "xquad") != (self.translate.backend == "parallel"):
            raise ValueError(f"data.source {self.data.source!r} and translate.backend {self.translate.backend!r} do "
                             "not fit: data.source xquad is already parallel and goes with translate.backend parallel "
                             "only")
        if self.data.source == "xquad" and "xquad-r" in self.evaluate.datasets:
            raise ValueError("evaluate.datasets names xquad-r, which LAReQA built from the XQuAD questions that "
                             "data.source xquad trains on: that would not be zero-shot; evaluate on mlqa-r")
        return self

    @model_validator(mode="after")
    def _check_evaluation_sets(self) -> "Params":
        # Only the synthetic corpus has a translated evaluation set; the other sources are evaluated on the
        # fetched LAReQA sets, so languages or a synth-r there would be unused or missing.
        translated_eval = self.data.source == "synthetic"
        if translated_eval and not self.translate.eval_languages:
            raise ValueError("translate.eval_languages must name at least one language: data.source synthetic "
                             "translates its evaluation set (synth-r) into them")
        if not translated_eval and self.translate.eval_languages:
            raise ValueError(f"translate.eval_languages is used by data.source synthetic only (data.source "
                             f"{self.data.source!r} translates no evaluation set; evaluate.datasets are fetched): "
                             "remove it")
        if not translated_eval and "synth-r" in self.evaluate.datasets:
            # xquad-r is no option for data.source xquad (_check_source_and_backend says why).
            options = [name for name in FETCHED_DATASETS if not (self.data.source == "xquad" and name == "xquad-r")]
            raise ValueError(f"evaluate.datasets names synth-r, the synthetic corpus's evaluation set, which "
                             f"data.source {self.data.source!r} does not write: evaluate on {' or '.join(options)}")
        return self

    @model_validator(mode="after")
    def _check_runs(self) -> "Params":
        if not self.runs:
            raise ValueError("runs must name at least one run")
        for name in self.runs:
            # Run names become DVC parameter paths (`runs.<name>`) and directory names.
            if not RUN_NAME.fullmatch(name):
                raise ValueError(f"run name {name!r} may use only letters, digits, '-' and '_' (no '.')")
        return self

    def output_paths(self) -> dict[str, Path]:
        """Every path the pipeline's stages write, by params key."""
        return {"data.out_dir": self.data.out_dir, "translate.out_dir": self.translate.out_dir,
                "translate.metrics_path": self.translate.metrics_path,
                "train.checkpoint_dir": self.train.checkpoint_dir, "train.model_dir": self.train.model_dir,
                "train.metrics_dir": self.train.metrics_dir, "evaluate.cache_dir": self.evaluate.cache_dir,
                "evaluate.out_dir": self.evaluate.out_dir, "report.out_dir": self.report.out_dir,
                **({"sources.out_dir": self.sources.out_dir} if self.sources else {})}

    @model_validator(mode="after")
    def _check_outputs_disjoint(self) -> "Params":
        check_disjoint_outputs(self.output_paths())
        return self

    def run(self, name: str) -> RunConfig:
        """The run called ``name``, or a clear error listing the defined runs."""
        if name not in self.runs:
            raise HybridReproError(f"unknown run {name!r}; params.yaml defines: {', '.join(self.runs)}")
        return self.runs[name]

    def run_seed(self, name: str) -> int:
        run = self.run(name)
        return self.seed if run.seed is None else run.seed


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    Plain YAML loaders keep the last value silently, while DVC refuses the file: the two would
    disagree on what the parameters are.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {seen[key].start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _section_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The section model that location ``loc`` (a pydantic error path) points into, if any."""
    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields):
            return None
        current = current.model_fields[part].annotation
        if typing.get_origin(current) is dict:
            if not parts:
                return None
            parts.pop(0)  # the mapping's own key, e.g. a run name
            current = typing.get_args(current)[1]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key_message(model: type[BaseModel], loc: tuple) -> str:
    section = _section_at(model, loc[:-1])
    valid = list(section.model_fields) if section else []
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}valid keys here: {', '.join(valid)}" if valid else "unknown key"


def _format_validation_error(exc: ValidationError, source: str, model: type[BaseModel]) -> str:
    lines = [f"invalid parameters in {source}:"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_key_message(model, err["loc"])
        elif err["type"] == "missing" and len(err["loc"]) == 1 and model is Params:
            message = "section missing: a profile is a complete file (copy the section from profiles/demo.yaml)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def params_from_dict(raw: object, source: str = "params", model: type[SectionT] = Params) -> SectionT:
    """Validate an already-parsed mapping as ``model``; raise HybridReproError with every problem found."""
    if not isinstance(raw, dict):
        raise HybridReproError(f"{source} must be a YAML mapping of sections, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise HybridReproError(_format_validation_error(exc, source, model)) from exc


def load_params(path: str | Path = DEFAULT_PARAMS, model: type[SectionT] = Params) -> SectionT:
    """Read and validate a params file as ``model`` (the pipeline's :class:`Params` unless given).

    A pipeline's params are also checked against the outputs the project's other pipelines declare: an output
    path may not replace another pipeline's results (their ownership marker would not stop it)."""
    return checked_params(read_params_mapping(path), Path(path), model)


def checked_params(raw: Any, path: Path, model: type[SectionT] = Params) -> SectionT:
    """``raw`` (the mapping read from the params file ``path``) validated as ``model``, its outputs checked against
    the other pipelines' (:func:`~hybrid_repro.paths.check_foreign_outputs`)."""
    params = params_from_dict(raw, str(path), model)
    outputs = params.output_paths() if isinstance(params, Params) else output_fields(params)
    try:
        check_foreign_outputs(outputs, path)
    except ValueError as exc:
        raise HybridReproError(f"{path}: {exc}") from exc
    return params


def output_fields(section: BaseModel, prefix: str = "") -> dict[str, Path]:
    """Every :data:`~hybrid_repro.paths.OutputPath` value of ``section`` and its subsections, by dotted key."""
    found = {}
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            found.update(output_fields(value, f"{prefix}{name}."))
        elif isinstance(value, Path) and any(getattr(item, "func", None) is check_output_path
                                             for item in field.metadata):
            found[f"{prefix}{name}"] = value
    return found


def read_params_mapping(path: str | Path = DEFAULT_PARAMS) -> Any:
    """The parsed, not yet validated, contents of a params file.

    Refused with a one-line error: a missing or unreadable file, invalid UTF-8, a NUL byte, invalid
    YAML and a key given twice in one mapping.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise HybridReproError(f"params file {path} not found (run from the repository root or pass --params)") from exc
    except OSError as exc:
        raise HybridReproError(f"cannot read params file {path}: {exc.strerror}") from exc
    text = decode_text(data, path, fix="fix it, or copy a profile from profiles/")
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise HybridReproError(f"{path} is not valid YAML: {where}{exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise HybridReproError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    return raw
