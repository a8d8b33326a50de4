"""Batch sampler for the X-X-mono, X-Y and Hybrid strategies (PAPER.md section 1, "Batch sampling").

The sampler sees metadata only: for each training example its ``question_id``, its ``dataset`` and the
languages it exists in. It decides, for every batch of an epoch, which examples go in and in which
language each query and passage is shown. The trainer looks the texts up by ``TripletRef``.

Specification (the paper's open choices are fixed here; the parameters expose the rest):

* **Usable languages.** Only ``train_languages`` count: an example's languages are intersected with them,
  and an example left with none is never used.
* **Branch.** Each batch is monolingual ("mono") with probability ``mono_probability`` and cross-lingual
  ("x-y") otherwise: 1.0 gives X-X-mono, 0.0 gives X-Y, alpha gives Hybrid. The branch is drawn once per batch.
* **Mono batch** (PAPER.md: "the whole batch is in one language, drawn uniformly from the training
  languages"). The language is drawn uniformly over ``train_languages``; then a dataset among those holding
  examples in that language: with ``dataset_mixing="proportional"`` with probability proportional to its
  number of usable examples in that language (fixed for the run), with ``"uniform"`` uniformly. Every
  triplet's query, positive and negative are in the batch language. Drawing the dataset first (as an
  earlier version did) gave English-only datasets their whole weight in English: 39 % of the demo's
  X-X-mono batches were English instead of 1/6.
* **X-Y batch.** A dataset among those with examples in at least two training languages, proportional to
  its number of such examples (or uniformly); single-language (e.g. English-only) datasets form mono
  batches only.
* **X-Y triplet.** Each triplet draws its own pair: the query language uniformly over the example's usable
  languages, the passage language uniformly over the example's *other* usable languages (never equal). The
  negative is in the passage language.
* **No false negatives from duplicates.** A ``question_id`` appears at most once per batch.
* **Each example at most once per epoch**, in whichever branch and language first takes it.
* **Exhaustion and the end of an epoch.** An *option* is a (dataset, language) pair for mono batches and a
  dataset for X-Y batches. When the drawn option cannot fill a whole batch any more (fewer than
  ``batch_size`` distinct questions among its unused examples), it is removed for the rest of the epoch
  and the dataset draw is repeated within the drawn language (mono) or among the multilingual datasets
  (X-Y). When the drawn language, or the X-Y branch, has no option left, the epoch ends there. So every
  batch of an epoch is an unconditional draw: its branch is Bernoulli(``mono_probability``) and a mono
  batch's language is uniform over all training languages. Skipping an exhausted language instead would
  end each epoch with a tail of the best-supplied language (English, which alone has the English-only
  datasets), and letting the other branch take over would end a Hybrid epoch as a single-strategy run. The
  price is that an epoch stops when its first language runs dry, leaving the rest of the data to later
  epochs (each reshuffled); docs/sampling.md gives the measured share of data an epoch uses.
  Incomplete batches are never formed.
* **Determinism.** An epoch's batches depend only on (``seed``, ``epoch``) through one numpy Generator
  seeded with ``SeedSequence([seed, epoch])``; languages and datasets are ordered by name, so neither the
  order of ``train_languages`` nor Python's string hashing changes the result.
* **Resume.** ``state_dict()`` is ``{"epoch", "step"}`` with ``step`` the number of batches already yielded
  in the epoch; after ``load_state_dict`` iteration yields exactly the rest of the uninterrupted sequence.

Cost: an epoch is planned once, in expected amortised O(total examples x usable languages) time. Every
dataset gets one random permutation per epoch; every option walks that permutation with its own pointer,
skipping (vectorised) examples already used or not in its language, so no batch rescans the data. Examples
passed over because their question is already in the batch are kept in a short per-option list and offered
first next time. The plan is stored as integer arrays; ``Batch`` objects are built as they are yielded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from hybrid_repro.errors import HybridReproError

MONO = "mono"
CROSS = "x-y"
DATASET_MIXINGS = ("proportional", "uniform")
# Planning a small epoch takes milliseconds; a progress bar only helps for corpora of paper scale.
PROGRESS_MIN_EXAMPLES = 1_000_000


@dataclass(frozen=True, slots=True)
class ExampleMeta:
    """What the sampler knows about one training example: its question, dataset and languages.

    Slotted: a corpus holds tens of millions of these."""

    question_id: str
    dataset: str
    languages: frozenset[str]


@dataclass(frozen=True)
class TripletRef:
    """One triplet of a batch: ``example`` indexes the examples sequence; the negative is in ``passage_lang``."""

    example: int
    query_lang: str
    passage_lang: str


@dataclass(frozen=True)
class Batch:
    """One batch: its strategy (``"mono"`` or ``"x-y"``), its dataset and its triplets."""

    strategy: str
    dataset: str
    items: tuple[TripletRef, ...]

    def composition(self) -> dict:
        """The realised composition, for logging: strategy, dataset and a count per ``"q->p"`` language pair."""
        pairs = Counter(f"{item.query_lang}->{item.passage_lang}" for item in self.items)
        return {"strategy": self.strategy, "dataset": self.dataset, "language_pairs": dict(sorted(pairs.items()))}


@dataclass
class _Option:
    """A source of batches during planning: the examples of ``dataset`` that ``eligible`` marks."""

    dataset: int
    language: int | None  # the batch language for mono options; None for the X-Y option
    eligible: np.ndarray  # bool per example: in this option's language (mono) or in >= 2 languages (X-Y)
    position: int = 0  # next index into the dataset's permutation
    deferred: list[int] = field(default_factory=list)  # skipped for a duplicate question, still unused


# One planned batch: (is_mono, dataset index, examples, query language indices, passage language indices).
_BatchRow = tuple[bool, int, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _EpochPlan:
    """An epoch's batches as arrays: row b holds batch b's examples and language indices."""

    is_mono: np.ndarray  # (n_batches,) bool
    dataset: np.ndarray  # (n_batches,) int
    example: np.ndarray  # (n_batches, batch_size) int
    query_lang: np.ndarray  # (n_batches, batch_size) int16, index into the sampler's languages
    passage_lang: np.ndarray  # (n_batches, batch_size) int16

    def __len__(self) -> int:
        return len(self.is_mono)


class HybridBatchSampler:
    """Yields the batches of one epoch at a time; see the module docstring for the sampling rules.

    ``set_epoch(e)`` moves to epoch ``e`` at step 0, and is a no-op when ``e`` is already the current epoch,
    so a training loop that calls it at the top of every epoch stays correct after ``load_state_dict``.
    Iterating yields the current epoch from the current step and advances the step; once the epoch is
    exhausted, iteration yields nothing until the next ``set_epoch``.
    """

    def __init__(
        self,
        examples: Sequence[ExampleMeta],
        *,
        batch_size: int,
        mono_probability: float,
        train_languages: Sequence[str],
        dataset_mixing: str = "proportional",
        seed: int = 0,
    ) -> None:
        _check_scalars(batch_size, mono_probability, dataset_mixing, seed, examples, train_languages)
        self.batch_size = int(batch_size)
        self.mono_probability = float(mono_probability)
        self.dataset_mixing = dataset_mixing
        self.seed = seed
        self.languages: tuple[str, ...] = tuple(sorted(set(train_languages)))
        self._index_examples(examples)
        self._check_languages_have_examples()
        self._check_batches_possible()
        self._epoch = 0
        self._step = 0
        self._cached_plan: tuple[int, _EpochPlan] | None = None

    # -- public API ----------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` at step 0; keep the position when ``epoch`` is already current."""
        _check_count("epoch", epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._step = 0

    def epoch_batches(self, epoch: int) -> list[Batch]:
        """Every batch of ``epoch``, in order; the same list for the same (seed, epoch)."""
        _check_count("epoch", epoch)
        plan = self._plan(epoch)
        return [self._batch(plan, index) for index in range(len(plan))]

    def __iter__(self) -> Iterator[Batch]:
        """The current epoch's batches from the current step on; each one yielded advances the step."""
        plan = self._plan(self._epoch)
        while self._step < len(plan):
            batch = self._batch(plan, self._step)
            # Advance before yielding so a state_dict taken while the batch is in use counts it as done.
            self._step += 1
            yield batch

    def num_batches(self, epoch: int) -> int:
        """The number of batches ``epoch`` holds, without materialising them."""
        _check_count("epoch", epoch)
        return len(self._plan(epoch))

    def __len__(self) -> int:
        """The number of batches in the current epoch (all of them, not only those left)."""
        return self.num_batches(self._epoch)

    def state_dict(self) -> dict:
        """``{"epoch": e, "step": s}``: ``s`` batches of epoch ``e`` have been yielded."""
        return {"epoch": self._epoch, "step": self._step}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position saved by :meth:`state_dict`; iteration continues right after it."""
        if not isinstance(state, dict) or set(state) != {"epoch", "step"}:
            raise HybridReproError(
                f"sampler state must be a dict with exactly the keys 'epoch' and 'step', got {state!r}; "
                "pass the value saved from HybridBatchSampler.state_dict()"
            )
        _check_count("sampler state 'epoch'", state["epoch"])
        _check_count("sampler state 'step'", state["step"])
        n_batches = len(self._plan(state["epoch"]))
        if state["step"] > n_batches:
            raise HybridReproError(
                f"sampler state step {state['step']} is past the end of epoch {state['epoch']} "
                f"({n_batches} batches); the checkpoint was saved with different data, batch size, "
                "strategy or seed: resume with the settings it was trained with"
            )
        self._epoch, self._step = state["epoch"], state["step"]

    # -- indexing (once per sampler) -----------------------------------------------------------------

    def _index_examples(self, examples: Sequence[ExampleMeta]) -> None:
        language_index = {language: i for i, language in enumerate(self.languages)}
        question_index: dict[str, int] = {}
        dataset_names = sorted({example.dataset for example in examples})
        dataset_index = {name: i for i, name in enumerate(dataset_names)}
        # Corpora have few distinct language sets (mostly "all languages"): index each set once.
        language_set_index: dict[frozenset[str], int] = {}
        questions: list[int] = []
        dataset_of: list[int] = []
        language_set_of: list[int] = []
        for example in examples:
            questions.append(question_index.setdefault(example.question_id, len(question_index)))
            dataset_of.append(dataset_index[example.dataset])
            language_set_of.append(language_set_index.setdefault(example.languages, len(language_set_index)))
        language_sets = np.zeros((len(language_set_index), len(self.languages)), dtype=bool)
        for languages, row in language_set_index.items():
            language_sets[row, [language_index[lang] for lang in languages if lang in language_index]] = True
        self._question = np.array(questions, dtype=np.int64)
        # Language-major so that an option's eligibility mask is one contiguous row.
        self._in_language = np.ascontiguousarray(language_sets[np.array(language_set_of, dtype=np.int64)].T)
        self._n_languages_of = self._in_language.sum(axis=0)
        self._multilingual = self._n_languages_of >= 2
        self.datasets: tuple[str, ...] = tuple(dataset_names)
        usable = self._n_languages_of >= 1
        dataset_of_example = np.array(dataset_of, dtype=np.int64)
        self._members = [np.flatnonzero(usable & (dataset_of_example == d)) for d in range(len(dataset_names))]
        # Mixing weights, fixed for the run: examples per (language, dataset), and multilingual ones per dataset.
        self._mono_size = np.array([[self._in_language[lang, members].sum() for members in self._members]
                                    for lang in range(len(self.languages))], dtype=np.float64)
        self._cross_size = np.array([self._multilingual[members].sum() for members in self._members], dtype=np.float64)

    def _new_options(self) -> tuple[dict[int, list[_Option]], list[_Option]]:
        """Fresh options for an epoch: per language its (dataset, language) options, and the X-Y options."""
        mono = {lang: [_Option(d, lang, self._in_language[lang]) for d in np.flatnonzero(sizes).tolist()]
                for lang, sizes in enumerate(self._mono_size)}
        cross = [_Option(d, None, self._multilingual) for d in np.flatnonzero(self._cross_size).tolist()]
        return mono, cross

    # -- validation ----------------------------------------------------------------------------------

    def _check_languages_have_examples(self) -> None:
        empty = [lang for lang, row in zip(self.languages, self._in_language) if not row.any()]
        if empty:
            raise HybridReproError(
                f"train language(s) {', '.join(empty)} have no training examples; "
                "remove them from train_languages or add data in those languages"
            )

    def _check_batches_possible(self) -> None:
        """Each draw possible at the start of an epoch must be able to fill a batch: else epochs could be empty."""
        mono, cross = self._new_options()
        short = {self.languages[lang]: max((self._distinct_questions(option) for option in options), default=0)
                 for lang, options in mono.items() if not self._any_can_fill(options)}
        if self.mono_probability > 0 and short:
            detail = ", ".join(f"{lang} has {count} distinct questions" for lang, count in short.items())
            raise HybridReproError(
                f"not enough examples for one monolingual batch of {self.batch_size} in every training language "
                f"(in its largest dataset, {detail}); lower sampler.batch_size, add training data in those "
                "languages, or drop them from train_languages"
            )
        if self.mono_probability < 1 and not self._any_can_fill(cross):
            best_cross = max((self._distinct_questions(option) for option in cross), default=0)
            raise HybridReproError(
                f"no dataset can form an X-Y batch of {self.batch_size}: X-Y needs examples in at least two "
                f"training languages, and the best dataset has {best_cross} distinct such questions; use "
                "strategy 'x-x-mono', lower sampler.batch_size, or add multilingual training data"
            )

    def _any_can_fill(self, options: list[_Option]) -> bool:
        # Largest first: usually the first option answers, sparing a distinct count per option.
        by_size = sorted(options, key=lambda option: -len(self._members[option.dataset]))
        return any(self._distinct_questions(option) >= self.batch_size for option in by_size)

    def _distinct_questions(self, option: _Option) -> int:
        members = self._members[option.dataset]
        return len(np.unique(self._question[members[option.eligible[members]]]))

    # -- planning ------------------------------------------------------------------------------------

    def _plan(self, epoch: int) -> _EpochPlan:
        if self._cached_plan is not None and self._cached_plan[0] == epoch:
            return self._cached_plan[1]
        plan = _EpochPlanner(self, np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))).run(epoch)
        # One slot: training reads one epoch at a time, and a plan can be large.
        self._cached_plan = (epoch, plan)
        return plan

    def _batch(self, plan: _EpochPlan, index: int) -> Batch:
        languages = self.languages
        items = tuple(
            TripletRef(example, languages[query], languages[passage])
            for example, query, passage in zip(
                plan.example[index].tolist(), plan.query_lang[index].tolist(), plan.passage_lang[index].tolist()
            )
        )
        strategy = MONO if plan.is_mono[index] else CROSS
        return Batch(strategy=strategy, dataset=self.datasets[int(plan.dataset[index])], items=items)


class _EpochPlanner:
    """Plans one epoch: draws branches, datasets and languages, and fills batches from the options."""

    def __init__(self, sampler: HybridBatchSampler, rng: np.random.Generator) -> None:
        self.sampler = sampler
        self.rng = rng
        self.orders = [rng.permutation(members) for members in sampler._members]
        self.mono, self.cross = sampler._new_options()
        self.used = np.zeros(len(sampler._question), dtype=bool)

    def run(self, epoch: int) -> _EpochPlan:
        s = self.sampler
        rows: list[_BatchRow] = []
        total = sum(len(members) for members in s._members)
        with tqdm(
            total=total, unit="ex", desc=f"planning epoch {epoch}", leave=False, disable=total < PROGRESS_MIN_EXAMPLES
        ) as progress:
            while True:
                is_mono = bool(self.rng.random() < s.mono_probability)
                row = self._next_batch(is_mono)
                if row is None:
                    break
                rows.append(row)
                progress.update(s.batch_size)
        return _stack(rows)

    def _next_batch(self, is_mono: bool) -> _BatchRow | None:
        """The next batch of the drawn branch; None when the drawn language (mono) or X-Y has nothing left."""
        s = self.sampler
        if is_mono:
            language = int(self.rng.integers(len(s.languages)))
            options, sizes = self.mono[language], s._mono_size[language]
        else:
            options, sizes = self.cross, s._cross_size
        while options:
            index = self._draw_option(options, sizes)
            option = options[index]
            examples = self._fill(option)
            if examples is None:
                del options[index]
                continue
            self.used[examples] = True
            if is_mono:
                query = passage = np.full(s.batch_size, option.language, dtype=np.int64)
            else:
                query, passage = self._draw_language_pairs(examples)
            return is_mono, option.dataset, examples, query, passage
        return None

    def _draw_option(self, options: list[_Option], sizes: np.ndarray) -> int:
        """Index of the option to use: uniform, or proportional to its dataset's size in ``sizes``."""
        if self.sampler.dataset_mixing == "uniform":
            return int(self.rng.integers(len(options)))
        weights = sizes[[option.dataset for option in options]]
        return int(self.rng.choice(len(options), p=weights / weights.sum()))

    def _fill(self, option: _Option) -> np.ndarray | None:
        """The next ``batch_size`` unused examples of the option with distinct questions, or None if too few.

        The option's pointer and deferred list move only on success; a failure means every unused
        example of the option has been seen and fewer than ``batch_size`` distinct questions remain.
        """
        s = self.sampler
        picked: list[int] = []
        questions: set[int] = set()
        deferred: list[int] = []

        def offer(example: int) -> None:
            question = int(s._question[example])
            if question in questions:
                deferred.append(example)
            else:
                questions.add(question)
                picked.append(example)

        for example in option.deferred:
            if len(picked) == s.batch_size:
                deferred.append(example)
            elif not self.used[example]:
                offer(example)

        order = self.orders[option.dataset]
        position = option.position
        chunk = s.batch_size
        while len(picked) < s.batch_size and position < len(order):
            window = order[position : position + chunk]
            offsets = np.flatnonzero(~self.used[window] & option.eligible[window])
            consumed = len(window)
            for offset, example in zip(offsets.tolist(), window[offsets].tolist()):
                if len(picked) == s.batch_size:
                    consumed = offset
                    break
                offer(example)
            position += consumed
            # Options that trail behind others meet long runs of used examples: widen the window.
            chunk *= 2
        if len(picked) < s.batch_size:
            return None
        option.position = position
        option.deferred = deferred
        return np.array(picked, dtype=np.int64)

    def _draw_language_pairs(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per triplet: query language uniform over the example's languages, passage uniform over the others."""
        available = self.sampler._in_language[:, examples].T.copy()  # (batch, languages)
        rows = np.arange(len(examples))
        counts = available.sum(axis=1)
        query_rank = (self.rng.random(len(examples)) * counts).astype(np.int64)
        query = _nth_true(available, query_rank)
        available[rows, query] = False
        passage_rank = (self.rng.random(len(examples)) * (counts - 1)).astype(np.int64)
        passage = _nth_true(available, passage_rank)
        return query, passage


def _nth_true(mask: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Column index of the ``rank[i]``-th (0-based) True in each row of ``mask``."""
    return np.argmax(np.cumsum(mask, axis=1) > rank[:, None], axis=1)


def _stack(rows: list[_BatchRow]) -> _EpochPlan:
    """The plan from its rows; the constructor's checks guarantee at least one row."""
    is_mono, dataset, example, query, passage = zip(*rows)
    return _EpochPlan(
        is_mono=np.array(is_mono, dtype=bool),
        dataset=np.array(dataset, dtype=np.int64),
        example=np.stack(example),
        # Language indices are tiny; int16 keeps a paper-scale plan (millions of triplets) small.
        query_lang=np.stack(query).astype(np.int16),
        passage_lang=np.stack(passage).astype(np.int16),
    )


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise HybridReproError(f"{name} must be a non-negative integer, got {value!r}")


def _check_scalars(
    batch_size: object,
    mono_probability: object,
    dataset_mixing: object,
    seed: object,
    examples: Sequence[ExampleMeta],
    train_languages: Sequence[str],
) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise HybridReproError(
            f"batch_size must be an integer >= 2 (in-batch negatives need other triplets), got {batch_size!r}; "
            "set sampler.batch_size to 2 or more"
        )
    if isinstance(mono_probability, bool) or not isinstance(mono_probability, (int, float)) or not (
        0.0 <= mono_probability <= 1.0
    ):
        raise HybridReproError(
            f"mono_probability must be a number in [0, 1] (1 = x-x-mono, 0 = x-y, alpha = hybrid), "
            f"got {mono_probability!r}; fix the run's alpha"
        )
    if dataset_mixing not in DATASET_MIXINGS:
        raise HybridReproError(
            f"unknown dataset_mixing {dataset_mixing!r}; set sampler.dataset_mixing to one of {', '.join(DATASET_MIXINGS)}"
        )
    _check_count("seed", seed)
    if len(examples) == 0:
        raise HybridReproError("no training examples were given to the batch sampler; build the training data first")
    if isinstance(train_languages, str) or len(train_languages) == 0:
        raise HybridReproError(
            f"train_languages must be a non-empty list of language codes, got {train_languages!r}; "
            "set translate.train_languages"
        )
