"""The paper's training and validation sources (PAPER.md section 2), one :class:`SourceSpec` each.

A spec says where a source lives (a hub dataset read with ``datasets.load_dataset``, files of a hub
dataset repository, or an archive at a canonical URL), which split and configs hold the pairs the
paper used, and how one raw record becomes :class:`RawPair` s. Repositories are named by their
canonical ids (after the hub's renames). The pinned commit hash (or the archive's sha256) is not
here: it is a parameter (``sources.datasets.<name>`` in params) that the profiles fill and
``hybrid-repro pin`` resolves or verifies. ``docs/data.md`` is the data card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Optional

# mMARCO's file names use language names; our codes are ISO 639-1 (the paper's tables).
MMARCO_LANGUAGES = {"en": "english", "ar": "arabic", "zh": "chinese", "de": "german", "es": "spanish",
                    "ru": "russian", "hi": "hindi"}


@dataclass(frozen=True)
class RawPair:
    """One (query, positive[, negative]) record as a source gives it, before normalisation.

    ``passage_key`` identifies the positive passage within its source (a document id, or the text
    itself when the source has none); passages with equal keys are one passage (:func:`passage_id`).
    """

    source_id: str
    query: str
    positive: str
    language: str = "en"
    negative: Optional[str] = None
    passage_key: Optional[str] = None
    negative_key: Optional[str] = None


@dataclass(frozen=True)
class SourceSpec:
    """Where one source lives and how its records become pairs.

    ``kind``: ``hub`` (``datasets.load_dataset(repo, config, split=split, revision=...)`` for every
    config in ``configs``), ``hub-files`` (files of the hub dataset repo ``repo``, read by
    ``read_files``) or ``url`` (one archive at ``url``, checked against a sha256 param, read by
    ``read_files``). ``translate``: the English pairs are to be machine-translated into the training
    languages; otherwise ``languages`` are the only ones the source has.

    ``parquet_export``: the repository's ``main`` holds only a loading script, which ``datasets`` 5
    refuses to run; the source is read from the hub's Parquet conversion (the ``refs/convert/parquet``
    branch, whose commit the revision pins), where each config is a folder: ``configs`` are then
    passed as ``data_dir``. ``pinned_on_first_download``: no public checksum exists for the archive,
    so a null sha256 records the first download's digest and refuses a later one that differs.
    """

    name: str
    kind: Literal["hub", "hub-files", "url"]
    repo: str
    role: Literal["train", "validation"]
    languages: tuple[str, ...]
    translate: bool
    paper_pairs: Optional[int]
    licence: str
    split: str = "train"
    configs: tuple[Optional[str], ...] = (None,)
    read_row: Optional[Callable[[dict[str, Any], str], Iterable[RawPair]]] = None
    url: Optional[str] = None
    files: tuple[str, ...] = ()
    gives_negatives: bool = False
    parquet_export: bool = False
    pinned_on_first_download: bool = False

    @property
    def pin_key(self) -> str:
        """The params key under ``sources.datasets.<name>`` that pins this source."""
        return "sha256" if self.kind == "url" else "revision"

    @property
    def lookup_hint(self) -> str:
        """Where a user finds the value of :attr:`pin_key`."""
        if self.kind == "url":
            return f"the sha256 of {self.url} (download it once and run sha256sum)"
        branch = "refs%2Fconvert%2Fparquet" if self.parquet_export else "main"
        return (f"a full commit hash from https://huggingface.co/datasets/{self.repo}/commits/{branch} "
                "(or run `hybrid-repro pin`)")


def passage_id(dataset: str, key: str) -> str:
    """The identity of a passage, shared by all its translations: the dataset and a hash of its key."""
    return f"{dataset}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:20]}"


def _text(value: Any) -> str:
    return " ".join(str(value or "").split())


def _first_answer(answers: Any) -> str:
    texts = answers.get("text", []) if isinstance(answers, dict) else answers or []
    return _text(texts[0]) if texts else ""


def _wikiqa(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # One row per (question, candidate sentence); label 1 marks a correct answer sentence.
    if int(row["label"]) == 1:
        yield RawPair(f"{row['question_id']}/{row['document_title']}/{_text(row['answer'])[:40]}",
                      _text(row["question"]), _text(row["answer"]))


def _duorc(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # The movie plot is the passage; questions the plot cannot answer are dropped.
    if not row["no_answer"]:
        yield RawPair(f"{config}/{row['question_id']}", _text(row["question"]), _text(row["plot"]),
                      passage_key=f"{config}/{row['plot_id']}")


def _context_qa(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # SQuAD-like rows (NewsQA, SQuADShifts): the context paragraph is the passage.
    key = row.get("id", row.get("key"))
    yield RawPair(f"{config or ''}/{key}".lstrip("/"), _text(row["question"]), _text(row["context"]))


def _query_answer(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # Natural Questions as (query, answer passage) pairs; the rows carry no id, so the query is the id.
    yield RawPair(_text(row["query"]), _text(row["query"]), _text(row["answer"]))


def _yahoo(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    yield RawPair(str(row["id"]), _text(row["question"]), _text(row["answer"]))


def _mrtydi(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # Mr. TyDi ships BM25 negatives: the first one is kept as the given hard negative.
    positives, negatives = row["positive_passages"], row["negative_passages"]
    if positives:
        negative = negatives[0] if negatives else None
        yield RawPair(str(row["query_id"]), _text(row["query"]), _text(positives[0]["text"]),
                      negative=_text(negative["text"]) if negative else None,
                      passage_key=str(positives[0]["docid"]),
                      negative_key=str(negative["docid"]) if negative else None)


def _mfaq(row: dict[str, Any], config: Optional[str]) -> Iterator[RawPair]:
    # One row per FAQ page, several question-answer pairs each.
    for index, pair in enumerate(row["qa_pairs"]):
        yield RawPair(f"{row['id']}/{index}", _text(pair["question"]), _text(pair["answer"]))


SPECS: dict[str, SourceSpec] = {spec.name: spec for spec in (
    SourceSpec("wikiqa", "hub", "microsoft/wiki_qa", "train", ("en",), True, 1_469,
               "Microsoft Research Data License Agreement (see the dataset card)", read_row=_wikiqa),
    SourceSpec("duorc", "hub", "ibm-research/duorc", "train", ("en",), True, 33_298, "MIT",
               configs=("SelfRC", "ParaphraseRC"), read_row=_duorc),
    SourceSpec("newsqa", "hub", "lucadiliello/newsqa", "train", ("en",), True, 59_496,
               "NewsQA terms (Microsoft; CNN stories for research use)", read_row=_context_qa),
    SourceSpec("natural-questions", "hub", "sentence-transformers/natural-questions", "train", ("en",), True,
               113_535, "CC BY-SA 3.0", read_row=_query_answer),
    SourceSpec("yahoo-answers-qa", "hub", "nfL6/yahoo_answers_qa", "train", ("en",), True,
               135_557, "Yahoo! Webscope terms (research use; see the dataset card)", read_row=_yahoo,
               configs=("yahoo_answers_qa",), parquet_export=True),
    SourceSpec("entityquestions", "url", "princeton-nlp/EntityQuestions", "train", ("en",), True, 176_975,
               "MIT", url="https://nlp.cs.princeton.edu/projects/entity-questions/dataset.zip",
               pinned_on_first_download=True),
    SourceSpec("mrtydi", "hub", "castorini/mr-tydi", "train", ("en",), False, 3_547, "Apache-2.0",
               configs=("english",), read_row=_mrtydi, gives_negatives=True, parquet_export=True),
    SourceSpec("mfaq", "hub", "clips/mfaq", "train", ("en",), False, 3_567_659, "CC0-1.0",
               configs=("en",), read_row=_mfaq, parquet_export=True),
    SourceSpec("mmarco", "hub-files", "unicamp-dl/mmarco", "train", tuple(MMARCO_LANGUAGES), False, 39_780_811,
               "MS MARCO terms (non-commercial research use); mMARCO: Apache-2.0 code",
               files=("data/triples.train.ids.small.tsv",
                      *(f"data/google/queries/train/{name}_queries.train.tsv" for name in MMARCO_LANGUAGES.values()),
                      *(f"data/google/collections/{name}_collection.tsv" for name in MMARCO_LANGUAGES.values())),
               gives_negatives=True),
    SourceSpec("squadshifts", "hub", "ludwigschmidt/squadshifts", "validation", ("en",), False, None, "CC BY 4.0",
               split="test", configs=("new_wiki", "nyt", "reddit", "amazon"), read_row=_context_qa,
               parquet_export=True),
)}
