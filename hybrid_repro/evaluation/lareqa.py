"""LAReQA retrieval data (XQuAD-R, MLQA-R and files in the same layout): questions, candidates, relevance.

The pools follow LAReQA's reference code (google-research/xtreme ``third_party/utils_lareqa.py``):

* every sentence of every paragraph of every loaded language is a candidate; its text is
  ``context[start:end]`` for each ``sentence_breaks`` span (the reference code's choice; the
  ``sentences`` field differs from it in one XQuAD-R paragraph, tr);
* a question is named ``{id}_{lang}``, a candidate ``{lang}_{p}_{s}``, where ``p`` counts the
  paragraphs of one language file from 1 in file order and ``s`` counts sentences from 0;
* a question's relevant candidates are, in every loaded language where a question with the same
  ``id`` exists, the sentence whose span holds that question's first answer start
  (``start <= answer_start < end``). The reference code also marks other sentences of the same
  paragraph whose text equals the answer sentence; no answer sentence of XQuAD-R or MLQA-R has
  such a twin, so both readings give the same pools there.

A question whose answer start lies in no sentence is skipped, as in the reference code, and
listed in :attr:`LareqaDataset.skipped_questions`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file

CANDIDATE_TEXTS = ("sentence", "sentence+context")


@dataclass(frozen=True)
class Questions:
    """Questions in load order (language by language, file order within one language)."""

    qid: tuple[str, ...]
    """``{id}_{lang}``, unique."""
    id: tuple[str, ...]
    """The cross-lingual id: equal ids mean the same question in different languages."""
    lang: tuple[str, ...]
    text: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.qid)


@dataclass(frozen=True)
class Candidates:
    """Candidate sentences in load order; the candidates of one language form one contiguous block."""

    cid: tuple[str, ...]
    """``{lang}_{p}_{s}``, unique."""
    lang: tuple[str, ...]
    sentence: tuple[str, ...]
    context: tuple[str, ...]
    """The paragraph the sentence comes from (LAReQA encodes the pair ``(sentence, context)``)."""

    def __len__(self) -> int:
        return len(self.cid)


@dataclass(frozen=True, eq=False)
class LareqaDataset:
    """One LAReQA-style retrieval dataset loaded from ``<directory>/<lang>.json`` files."""

    name: str
    candidate_text: str
    """``"sentence"`` (encode the sentence) or ``"sentence+context"`` (encode the pair)."""
    languages: tuple[str, ...]
    questions: Questions
    candidates: Candidates
    relevance: tuple[np.ndarray, ...]
    """For each question, the sorted int64 indices of its relevant candidates, across all languages."""
    checksums: dict[str, str]
    """sha256 of each language file, by language."""
    skipped_questions: tuple[str, ...] = ()
    question_lang_index: np.ndarray = field(init=False, repr=False)
    """Index into :attr:`languages` of each question's language."""
    candidate_lang_index: np.ndarray = field(init=False, repr=False)
    """Index into :attr:`languages` of each candidate's language."""
    language_blocks: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    """``(start, stop)`` of each language's candidate block, in :attr:`languages` order."""

    def __post_init__(self) -> None:
        position = {lang: i for i, lang in enumerate(self.languages)}
        object.__setattr__(self, "question_lang_index", np.array([position[x] for x in self.questions.lang], np.int64))
        cand_index = np.array([position[x] for x in self.candidates.lang], np.int64)
        if np.any(np.diff(cand_index) < 0):
            raise ValueError("candidates must be grouped by language in the order of `languages`")
        object.__setattr__(self, "candidate_lang_index", cand_index)
        bounds = np.searchsorted(cand_index, np.arange(len(self.languages) + 1))
        object.__setattr__(self, "language_blocks", tuple(zip(bounds[:-1].tolist(), bounds[1:].tolist())))

    def candidate_inputs(self) -> list[str] | list[tuple[str, str]]:
        """What to encode for each candidate: the sentence, or the pair (sentence, context)."""
        if self.candidate_text == "sentence":
            return list(self.candidates.sentence)
        return list(zip(self.candidates.sentence, self.candidates.context))

    def question_index(self) -> dict[str, int]:
        """Map ``qid`` -> row of :attr:`questions`."""
        return {qid: i for i, qid in enumerate(self.questions.qid)}

    def candidate_index(self) -> dict[str, int]:
        """Map ``cid`` -> row of :attr:`candidates`."""
        return {cid: i for i, cid in enumerate(self.candidates.cid)}


def _read_language_file(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise HybridReproError(f"missing language file {path}: fetch the dataset again or drop the language") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HybridReproError(f"{path} is not valid JSON (truncated or corrupt?): {exc}; fetch it again") from exc


@dataclass
class _PoolBuilder:
    """Accumulates questions and candidates file by file, then links relevance across languages."""

    q_qid: list[str] = field(default_factory=list)
    q_id: list[str] = field(default_factory=list)
    q_lang: list[str] = field(default_factory=list)
    q_text: list[str] = field(default_factory=list)
    q_answer: list[int] = field(default_factory=list)
    c_cid: list[str] = field(default_factory=list)
    c_lang: list[str] = field(default_factory=list)
    c_sentence: list[str] = field(default_factory=list)
    c_context: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add_file(self, squad: dict, lang: str, path: Path) -> None:
        try:
            articles = squad["data"]
            paragraph_number = 0
            for article in articles:
                for paragraph in article["paragraphs"]:
                    paragraph_number += 1
                    self._add_paragraph(paragraph, lang, paragraph_number)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise HybridReproError(
                f"{path} does not have the SQuAD layout with sentence_breaks that LAReQA needs "
                f"({type(exc).__name__}: {exc}); check that it is an XQuAD-R/MLQA-R style file"
            ) from exc

    def _add_paragraph(self, paragraph: dict, lang: str, paragraph_number: int) -> None:
        context = paragraph["context"]
        spans = [(int(start), int(end)) for start, end in paragraph["sentence_breaks"]]
        first_candidate = len(self.c_cid)
        for s, (start, end) in enumerate(spans):
            self.c_cid.append(f"{lang}_{paragraph_number}_{s}")
            self.c_lang.append(lang)
            self.c_sentence.append(context[start:end])
            self.c_context.append(context)
        for qa in paragraph["qas"]:
            answer_start = int(qa["answers"][0]["answer_start"])
            sentence = next((s for s, (start, end) in enumerate(spans) if start <= answer_start < end), None)
            qid = f"{qa['id']}_{lang}"
            if sentence is None:
                self.skipped.append(qid)
                continue
            self.q_qid.append(qid)
            self.q_id.append(str(qa["id"]))
            self.q_lang.append(lang)
            self.q_text.append(qa["question"])
            self.q_answer.append(first_candidate + sentence)

    def relevance(self) -> tuple[np.ndarray, ...]:
        answers_by_id: dict[str, list[int]] = {}
        for xling_id, answer in zip(self.q_id, self.q_answer):
            answers_by_id.setdefault(xling_id, []).append(answer)
        return tuple(np.array(sorted(answers_by_id[xling_id]), np.int64) for xling_id in self.q_id)


def _check_unique(ids: list[str], what: str, directory: Path) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise HybridReproError(f"duplicate {what} {item!r} in {directory}: each id may appear once per language")
        seen.add(item)


def available_languages(directory: Path) -> tuple[str, ...]:
    """Languages with a ``<lang>.json`` file in ``directory``, sorted."""
    if not directory.is_dir():
        raise HybridReproError(f"dataset directory {directory} does not exist: fetch the dataset first")
    return tuple(sorted(path.stem for path in directory.glob("*.json")))


def load_lareqa(
    directory: Path,
    languages: Sequence[str] | None = None,
    candidate_text: str = "sentence",
    name: str | None = None,
) -> LareqaDataset:
    """Load ``<directory>/<lang>.json`` for each language (default: every ``*.json`` there, sorted).

    ``name`` defaults to the directory name (``xquad-r``, ``mlqa-r``, ``synth-r``).
    Raises HybridReproError for a missing or corrupt file, a file without sentence breaks,
    duplicate ids, an unknown ``candidate_text`` or an empty selection.
    """
    directory = Path(directory)
    if candidate_text not in CANDIDATE_TEXTS:
        raise HybridReproError(f"candidate_text must be one of {CANDIDATE_TEXTS}, got {candidate_text!r}")
    langs = tuple(languages) if languages is not None else available_languages(directory)
    if not langs:
        raise HybridReproError(f"no language files (<lang>.json) in {directory}: fetch the dataset first")
    if len(set(langs)) != len(langs):
        raise HybridReproError(f"languages listed twice: {list(langs)}")
    builder = _PoolBuilder()
    checksums = {}
    for lang in langs:
        path = directory / f"{lang}.json"
        builder.add_file(_read_language_file(path), lang, path)
        checksums[lang] = sha256_file(path)
    _check_unique(builder.q_qid, "question id", directory)
    _check_unique(builder.c_cid, "candidate id", directory)
    if builder.skipped:
        warnings.warn(
            f"{len(builder.skipped)} question(s) in {directory} have no sentence holding their answer start "
            f"and were skipped, as in LAReQA's reference code (first: {builder.skipped[0]})",
            stacklevel=2,
        )
    return LareqaDataset(
        name=name or directory.name,
        candidate_text=candidate_text,
        languages=langs,
        questions=Questions(tuple(builder.q_qid), tuple(builder.q_id), tuple(builder.q_lang), tuple(builder.q_text)),
        candidates=Candidates(
            tuple(builder.c_cid), tuple(builder.c_lang), tuple(builder.c_sentence), tuple(builder.c_context)
        ),
        relevance=builder.relevance(),
        checksums=checksums,
        skipped_questions=tuple(builder.skipped),
    )
