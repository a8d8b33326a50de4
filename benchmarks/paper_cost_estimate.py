"""Cost of the paper profiles: text lengths measured on a real-text sample, compute and volume derived from them.

Nothing here ran on a GPU, and the paper's sources could not be fetched (no hub access here). So:

1. **Measured on a sample.** The English XQuAD file (``xquad.en.json``: 48 Wikipedia articles, 240
   paragraphs, 1,190 questions) stands in for the English QA passages and questions. It is tokenised
   with the XLM-R sentencepiece tokenizer of multilingual-e5-small (``--tokenizer``, a checkpoint
   directory such as ``pretrained/multilingual-e5-small``), as the encoder sees the texts: with the
   profile's prefix (``query: `` / ``passage: ``) and ``<s>`` ``</s>``. XLM-R base and large share this
   vocabulary; LaBSE's differs, so its lengths were not measured. Recorded: token lengths of questions,
   passages (the paragraphs) and answer sentences (the sentence of XQuAD-R's split holding the first
   answer's start, as the me5-xquad corpus reads them), the share longer than the profiles' maximum lengths, sentences per passage as the
   translate stage splits them (:func:`hybrid_repro.data.sentences.split_sentences`) and characters per
   sentence.
2. **Training compute, derived.** Forward FLOPs of an encoder of the named shape, counted exactly over
   its matrix products (:func:`forward_flops`), times 3 for forward plus backward, per optimisation
   step of ``sampler.batch_size`` triplets (the trainer encodes the queries in one batch and the
   positives and negatives in another, each padded to its longest text), then over the profile's
   ``train.max_steps`` (an upper bound: early stopping usually ends a run sooner) at assumed sustained
   throughputs (:data:`ASSUMED_THROUGHPUT`): assumptions, not measurements.
3. **Translation volume, derived.** Sentences, characters and source tokens the translate stage sends
   to the MT model: the query, positive and negative of every machine-translated pair, split into
   sentences, once per target language. Not turned into GPU-hours (see :func:`translation_volume`).
4. **Download size** only of files present here (the evaluation sets the profiles fetch).

Usage (repository root, inside .venv):
    HYBRID_REPRO_SHARED_DATA=path/to/shared/data python benchmarks/paper_cost_estimate.py \\
        --tokenizer pretrained/multilingual-e5-small --out benchmarks/paper_cost_estimate.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_speed import machine  # noqa: E402
from hybrid_repro.config import read_params_mapping  # noqa: E402
from hybrid_repro.data.sentences import split_sentences  # noqa: E402
from hybrid_repro.data.xquad import read_language  # noqa: E402
from hybrid_repro.evaluation.download import PINNED, verify_pinned_files  # noqa: E402
from hybrid_repro.io import read_json, sha256_file, write_json  # noqa: E402
from hybrid_repro.sources.specs import SPECS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("paper-xlmr", "paper-labse", "mini")
SOURCE_LANGUAGE = "en"


@dataclass(frozen=True)
class EncoderShape:
    """The sizes of a BERT-style encoder that decide its matrix-product FLOPs (heads do not: they split H)."""

    layers: int
    hidden: int
    ffn: int
    heads: int


ENCODERS = {
    "xlm-roberta-base": EncoderShape(layers=12, hidden=768, ffn=3072, heads=12),
    "xlm-roberta-large": EncoderShape(layers=24, hidden=1024, ffn=4096, heads=16),
    # LaBSE is BERT-base shaped; its own vocabulary changes token counts, not FLOPs per token.
    "sentence-transformers/LaBSE": EncoderShape(layers=12, hidden=768, ffn=3072, heads=12),
    "intfloat/multilingual-e5-small": EncoderShape(layers=12, hidden=384, ffn=1536, heads=12),
}

# Sustained throughput as a share of the dense bf16 peak: an assumption (no GPU ran here). The A100 is the
# paper's GPU (PAPER.md §1: one A100 80GB); peaks are the vendors' dense (no sparsity) bf16 tensor figures.
PEAK_BF16_FLOPS = {"A100": 312e12, "H100 SXM": 989e12}
ASSUMED_UTILISATION = (0.25, 0.5)
ASSUMED_THROUGHPUT = {f"{gpu} at {round(share * 100)}% of {peak / 1e12:.0f} TFLOP/s": peak * share
                      for gpu, peak in PEAK_BF16_FLOPS.items() for share in ASSUMED_UTILISATION}


def forward_flops(shape: EncoderShape, length: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one forward pass over a sequence of ``length`` tokens.

    Per layer: the Q, K and V projections ``3 * 2*L*H*H``, the attention scores ``Q K^T`` ``2*L*L*H`` and
    their product with V ``2*L*L*H`` (summed over heads: heads x head size = H), the output projection
    ``2*L*H*H`` and the two feed-forward products ``2 * 2*L*H*F``. Not counted: the embedding lookup (no
    product), softmax, layer norms, GELU, biases and residual additions (element-wise, not matrix products),
    a pooler head (one ``H x H`` product per sequence) and the loss's similarity matrix. The backward pass
    costs two forwards (a gradient for the input and one for the weights of every product).
    """
    hidden, ffn = shape.hidden, shape.ffn
    per_layer = 8 * length * hidden * hidden + 4 * length * hidden * ffn + 4 * length * length * hidden
    return shape.layers * per_layer


def training_step_flops(shape: EncoderShape, query_lengths: Sequence[int], passage_lengths: Sequence[int]) -> int:
    """Forward plus backward FLOPs (3 x :func:`forward_flops`) of one step that encodes sequences of
    ``query_lengths`` and ``passage_lengths`` tokens."""
    return 3 * sum(forward_flops(shape, length) for length in (*query_lengths, *passage_lengths))


def gpu_hours(flops: float, flops_per_second: float) -> float:
    """Hours of one GPU sustaining ``flops_per_second``, to 3 significant digits (an estimate, not a reading)."""
    return float(f"{flops / flops_per_second / 3600:.3g}")


def distribution(values: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50, p90, p99 and max of ``values`` (percentiles linearly interpolated, numpy's default)."""
    array = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {"count": int(array.size), "mean": round(float(array.mean()), 2), "p50": round(float(p50), 2),
            "p90": round(float(p90), 2), "p99": round(float(p99), 2), "max": round(float(array.max()), 2)}


def share_over(lengths: Sequence[int], limit: int) -> float:
    """The share of ``lengths`` above ``limit``: the texts truncation cuts."""
    return round(sum(length > limit for length in lengths) / len(lengths), 4)


@dataclass(frozen=True)
class QASample:
    """English QA texts: every question, every passage (once) and each question's answer sentence."""

    questions: list[str]
    passages: list[str]
    answer_sentences: list[str]
    passage_sentences: list[tuple[str, ...]]
    question_passage: list[int]


def read_squad_sample(xquad_file: Path, xquad_r_file: Path) -> QASample:
    """Questions, passages and answer sentences of one XQuAD language as the me5-xquad corpus reads them
    (:func:`hybrid_repro.data.xquad.read_language`: each question's answer sentence by XQuAD-R's sentence spans,
    as LAReQA cuts them); each passage is its sentences rejoined, split again as the translate stage splits text."""
    questions, passages, answers, splits, owner = [], [], [], [], []
    for article in read_language(xquad_file, xquad_r_file):
        for paragraph in article.paragraphs:
            passage = " ".join(paragraph.sentences)
            passages.append(passage)
            splits.append(split_sentences(passage, SOURCE_LANGUAGE).sentences)
            for question_id, question in paragraph.questions.items():
                questions.append(question)
                owner.append(len(passages) - 1)
                answers.append(paragraph.sentences[paragraph.answer_sentence[question_id]])
    return QASample(questions, passages, answers, splits, owner)


TokenCounter = Callable[[Sequence[str]], list[int]]


def hf_token_counter(tokenizer, with_special_tokens: bool) -> TokenCounter:
    """Token counts of texts under a transformers tokenizer, untruncated."""
    def count(texts: Sequence[str]) -> list[int]:
        ids = tokenizer(list(texts), add_special_tokens=with_special_tokens, truncation=False)["input_ids"]
        return [len(row) for row in ids]
    return count


@dataclass(frozen=True)
class TextLengths:
    """Encoder-input token lengths (prefix and special tokens included) of the sample's texts."""

    queries: list[int]
    passages: list[int]
    answer_sentences: list[int]


def encoder_lengths(sample: QASample, count: TokenCounter, query_prefix: str, passage_prefix: str) -> TextLengths:
    return TextLengths(count([query_prefix + text for text in sample.questions]),
                       count([passage_prefix + text for text in sample.passages]),
                       count([passage_prefix + text for text in sample.answer_sentences]))


def text_units(splits: Sequence[Sequence[str]], count_source: TokenCounter) -> dict[str, list[int]]:
    """Per text (given as its sentences): sentences, characters and source tokens, the sum over its sentences."""
    return {"sentences": [len(sentences) for sentences in splits],
            "characters": [sum(map(len, sentences)) for sentences in splits],
            "source_tokens": [sum(count_source(sentences)) for sentences in splits]}


def pair_translation_units(sample: QASample, count_source: TokenCounter) -> dict[str, float]:
    """Mean sentences, characters and source tokens the translate stage sends per QA pair of the sample.

    A pair is translated as its three texts (query, positive, negative), each split into sentences. The
    negative is another passage of the same dataset, so it is counted as one more passage of the sample's
    distribution. The figure counts every sentence: the stage translates a distinct sentence once per target
    language (unique texts per round, the translation cache across rounds), which saves whatever the data
    repeats; ``distinct_sentence_share`` is that saving on this sample, where about five questions share a
    passage (negatives drawn as the next passage of the file), and is a property of SQuAD-style data only.
    """
    question_sentences = [split_sentences(text, SOURCE_LANGUAGE).sentences for text in sample.questions]
    per_question = text_units(question_sentences, count_source)
    per_passage = text_units(sample.passage_sentences, count_source)
    units = {f"{unit}_per_pair": round(float(np.mean(per_question[unit]) + 2 * np.mean(per_passage[unit])), 2)
             for unit in per_passage}
    every, distinct = 0, set()
    for index, owner in enumerate(sample.question_passage):
        negative = (owner + 1) % len(sample.passages)
        texts = (question_sentences[index], sample.passage_sentences[owner], sample.passage_sentences[negative])
        for sentences in texts:
            every += len(sentences)
            distinct.update(sentences)
    units["distinct_sentence_share"] = round(len(distinct) / every, 4)
    return units


def measure_sample(sample: QASample, lengths: TextLengths, source_count: TokenCounter) -> dict:
    """What the sample measures: the length distributions and the translation units per pair."""
    sentences = [sentence for split in sample.passage_sentences for sentence in split]
    return {
        "query_tokens": distribution(lengths.queries),
        "passage_tokens": distribution(lengths.passages),
        "answer_sentence_tokens": distribution(lengths.answer_sentences),
        "sentences_per_passage": distribution([len(split) for split in sample.passage_sentences]),
        "characters_per_sentence": distribution([len(sentence) for sentence in sentences]),
        "translation_per_pair": pair_translation_units(sample, source_count),
    }


def truncated_shares(lengths: TextLengths, max_query: int, max_passage: int) -> dict[str, float]:
    """The shares of the sample's texts that the maximum lengths cut (measured)."""
    return {"queries": share_over(lengths.queries, max_query), "passages": share_over(lengths.passages, max_passage),
            "answer_sentences_as_passages": share_over(lengths.answer_sentences, max_passage)}


def step_lengths(lengths: TextLengths, max_query: int, max_passage: int) -> dict[str, dict]:
    """The token lengths a step's queries and passages (positives and negatives alike) are drawn from, three
    ways: ``unpadded`` every text its own capped length (the sample's texts, averaged: the compute of an ideal
    unpadded encoder), ``padded_p99`` every text padded to the capped p99 (about the longest of a batch of 100),
    ``upper_bound`` every text at the maximum length (any data)."""
    capped_queries = [min(length, max_query) for length in lengths.queries]
    capped_passages = [min(length, max_passage) for length in lengths.passages]
    p99_query = min(int(np.ceil(np.percentile(lengths.queries, 99))), max_query)
    p99_passage = min(int(np.ceil(np.percentile(lengths.passages, 99))), max_passage)
    return {
        "unpadded": {"queries": capped_queries, "passages": capped_passages},
        "padded_p99": {"queries": [p99_query], "passages": [p99_passage]},
        "upper_bound": {"queries": [max_query], "passages": [max_passage]},
    }


def step_cost(shape: EncoderShape, queries: Sequence[int], passages: Sequence[int], batch: int) -> dict:
    """Tokens and forward+backward FLOPs of one step of ``batch`` triplets whose queries are drawn from
    ``queries`` and passages (positive and negative) from ``passages``: the mean over the lengths given."""
    query_flops = training_step_flops(shape, queries, ()) / len(queries)
    passage_flops = training_step_flops(shape, (), passages) / len(passages)
    return {"query_tokens": round(batch * float(np.mean(queries)), 1),
            "passage_tokens": round(2 * batch * float(np.mean(passages)), 1),
            "flops": batch * query_flops + 2 * batch * passage_flops}


def training_estimate(shape: EncoderShape, lengths: TextLengths, batch: int, max_query: int, max_passage: int,
                      max_steps: int, runs: int) -> dict:
    """Per step, per run of ``max_steps`` and per grid of ``runs`` runs: tokens, FLOPs and GPU-hours at
    every assumed throughput."""
    out = {}
    for name, step in step_lengths(lengths, max_query, max_passage).items():
        cost = step_cost(shape, step["queries"], step["passages"], batch)
        run_flops = cost["flops"] * max_steps
        out[name] = {
            "tokens_per_step": round(cost["query_tokens"] + cost["passage_tokens"], 1),
            "query_tokens_per_step": cost["query_tokens"], "passage_tokens_per_step": cost["passage_tokens"],
            "tflops_per_step": round(cost["flops"] / 1e12, 3),
            "pflops_per_run": round(run_flops / 1e15, 1),
            "gpu_hours_per_run": {label: gpu_hours(run_flops, rate) for label, rate in ASSUMED_THROUGHPUT.items()},
            "gpu_hours_all_runs": {label: gpu_hours(run_flops * runs, rate)
                                   for label, rate in ASSUMED_THROUGHPUT.items()},
        }
    return out


def machine_translated_pairs(profile: dict) -> dict[str, int]:
    """English pairs per machine-translated source: the paper's count (PAPER.md §2), or at most the profile's
    ``max_pairs`` when it sets one (the stage keeps the first ``max_pairs`` pairs)."""
    pairs = {}
    for name, settings in profile["sources"]["datasets"].items():
        spec = SPECS[name]
        if spec.translate and spec.role == "train":
            cap = settings.get("max_pairs")
            pairs[name] = spec.paper_pairs if cap is None else min(cap, spec.paper_pairs)
    return pairs


def translation_volume(profile: dict, per_pair: dict[str, float]) -> dict:
    """Sentences, characters and source tokens to translate: pairs x target languages x the sample's units per
    pair, before de-duplication (the stage translates a repeated sentence once per language). Neither a bound nor a
    measurement: the units per pair are the XQuAD sample's, and DuoRC's plots and NewsQA's articles (92,794 of the
    paper's 520,330 pairs) are much longer passages than XQuAD's paragraphs, so the real count can be far higher.

    No GPU-hours: generation is memory-bound, so a FLOP count would mislead, and no sentences-per-second of the
    profiles' MT models on a GPU was measured or documented here. Each ``translate@DATASET-LANGUAGE`` stage's
    receipt records its ``sentences_per_second``; GPU-hours are then sentences / (3600 x that rate).
    """
    pairs = machine_translated_pairs(profile)
    targets = [lang for lang in profile["translate"]["train_languages"] if lang != SOURCE_LANGUAGE]
    total_pairs = sum(pairs.values())
    translations = total_pairs * len(targets)
    return {
        "mt_model": profile["translate"]["model_name"],
        "english_pairs_by_source": pairs, "english_pairs": total_pairs, "target_languages": targets,
        "pair_translations": translations,
        "sentences_before_dedup": round(translations * per_pair["sentences_per_pair"]),
        "characters_before_dedup": round(translations * per_pair["characters_per_pair"]),
        "source_tokens_before_dedup_xlmr": round(translations * per_pair["source_tokens_per_pair"]),
        "sentences_per_target_language_before_dedup": round(total_pairs * per_pair["sentences_per_pair"]),
    }


def evaluation_download(profile: dict, shared_data: Path) -> dict:
    """Bytes of the evaluation files the profile evaluates on, which ``pipelines/lareqa/dvc.yaml``'s ``fetch@``
    stages download (every file pinned in :data:`~hybrid_repro.evaluation.download.PINNED`, licence included),
    from the pinned copies under ``shared_data/<dataset>/`` (:func:`estimate` checks their sha256 first)."""
    sizes = {dataset: sum((shared_data / dataset / name).stat().st_size for name in PINNED[dataset].sha256)
             for dataset in profile["evaluate"]["datasets"]}
    return {"bytes_by_dataset": sizes, "bytes": sum(sizes.values())}


def read_profile(name: str) -> dict:
    return read_params_mapping(REPO / "profiles" / f"{name}.yaml")


def profile_estimate(name: str, lengths: TextLengths, per_pair: dict[str, float], shared_data: Path) -> dict:
    """Everything derived for one profile."""
    profile = read_profile(name)
    model, train = profile["model"], profile["train"]
    encoders = [model["name"]] + (["xlm-roberta-large"] if model["name"] == "xlm-roberta-base" else [])
    batch, steps, runs = profile["sampler"]["batch_size"], train["max_steps"], len(profile["runs"])
    return {
        "encoder": model["name"], "batch_triplets": batch, "max_steps": steps, "runs": runs,
        "max_query_length": model["max_query_length"], "max_passage_length": model["max_passage_length"],
        "triplets_seen_at_max_steps": batch * steps,
        "measured_share_cut_by_max_lengths": truncated_shares(lengths, model["max_query_length"],
                                                              model["max_passage_length"]),
        "training": {encoder: {"shape": asdict(ENCODERS[encoder]),
                               **training_estimate(ENCODERS[encoder], lengths, batch, model["max_query_length"],
                                                   model["max_passage_length"], steps, runs)}
                     for encoder in encoders},
        "translation": translation_volume(profile, per_pair),
        "evaluation_download": evaluation_download(profile, shared_data),
    }


def check_shape(checkpoint: Path) -> None:
    """The local checkpoint's config must have the shape listed for multilingual-e5-small."""
    config = read_json(checkpoint / "config.json")
    found = EncoderShape(config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"],
                         config["num_attention_heads"])
    if found != ENCODERS["intfloat/multilingual-e5-small"]:
        raise SystemExit(f"{checkpoint}/config.json has shape {found}, not multilingual-e5-small's")


def estimate(tokenizer_dir: Path, xquad: Path, shared_data: Path) -> dict:
    from transformers import AutoTokenizer

    check_shape(tokenizer_dir)
    for dataset in PINNED:
        verify_pinned_files(dataset, shared_data / dataset)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    prefixes = {(model["query_prefix"], model["passage_prefix"])
                for model in (read_profile(name)["model"] for name in PROFILES)}
    if len(prefixes) != 1:
        raise SystemExit(f"the profiles' prefixes differ ({sorted(prefixes)}): measure the lengths per profile")
    xquad_r = shared_data / "xquad-r" / f"{SOURCE_LANGUAGE}.json"
    sample = read_squad_sample(xquad, xquad_r)
    lengths = encoder_lengths(sample, hf_token_counter(tokenizer, True), *prefixes.pop())
    measured = measure_sample(sample, lengths, hf_token_counter(tokenizer, False))
    return {
        "what": "Cost of the paper profiles: text lengths measured on a real-text sample; training FLOPs, GPU-hours "
                "and translation volume derived from them (estimates); no GPU ran and no paper source was fetched.",
        "machine": machine(),
        "sample": {"file": xquad.name, "sha256": sha256_file(xquad), "questions": len(sample.questions),
                   "passages": len(sample.passages),
                   "stand_in": "English XQuAD (Wikipedia paragraphs, SQuAD v1.1 dev questions) stands in for the "
                               "paper's English QA passages and questions, which cannot be fetched here; the "
                               "paper's training is mostly mMARCO (web passages) and MFAQ, whose lengths differ"},
        "tokenizer": {"checkpoint": tokenizer_dir.name, "pieces": len(tokenizer),
                      "note": "XLM-R sentencepiece (xlm-roberta-base and -large share it); LaBSE's vocabulary "
                              "differs, so its lengths are not measured; the MT models' tokenizers differ too, so "
                              "source tokens are XLM-R pieces, a proxy"},
        "measured_on_sample": measured,
        "assumptions": {
            "sustained_flops_per_second": ASSUMED_THROUGHPUT,
            "why": "assumed shares (25%, 50%) of the dense bf16 peaks of the A100 (the paper's GPU) and H100 SXM; "
                   "no GPU throughput was measured",
            "flops": "matrix products of the encoder layers only (forward_flops), x3 for forward plus backward; "
                     "unpadded: each text at its own capped length; padded_p99: queries and passages padded to "
                     "the capped p99 (about a batch's longest); upper_bound: every text at the maximum length",
            "translation": "no GPU-hours: generation is memory-bound, so a FLOP count would mislead, and no MT "
                           "throughput on a GPU was measured here; each translate@ stage's receipt records "
                           "sentences_per_second, and GPU-hours = sentences / (3600 x that rate). Counts are "
                           "estimates before de-duplication (the stage translates a repeated sentence once per "
                           "language) at the XQuAD sample's sentences per passage; DuoRC's plots and NewsQA's "
                           "articles are much longer passages, so the real count can be far higher",
            "max_steps": "train.max_steps is an upper bound: early stopping on the validation loss usually ends "
                         "a run sooner, and validation and evaluation passes are not counted",
        },
        "profiles": {name: profile_estimate(name, lengths, measured["translation_per_pair"], shared_data)
                     for name in PROFILES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, default=REPO / "pretrained" / "multilingual-e5-small")
    shared = Path(os.environ.get("HYBRID_REPRO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--xquad", type=Path, default=shared / "xquad" / "xquad.en.json",
                        help="the pinned English XQuAD file (default: under HYBRID_REPRO_SHARED_DATA)")
    parser.add_argument("--shared-data", type=Path, default=None,
                        help="folder holding xquad-r/ and mlqa-r/ (default: the --xquad file's grandparent)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "paper_cost_estimate.json")
    args = parser.parse_args()
    result = estimate(args.tokenizer, args.xquad, args.shared_data or args.xquad.parent.parent)
    write_json(args.out, result)
    print(json.dumps({name: {"translation_sentences": p["translation"]["sentences_before_dedup"],
                             "training": {enc: t["padded_p99"]["gpu_hours_per_run"] for enc, t in p["training"].items()}}
                      for name, p in result["profiles"].items()}, indent=1))


if __name__ == "__main__":
    main()
