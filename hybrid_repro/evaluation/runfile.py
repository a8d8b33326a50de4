"""TREC run files with LAReQA ids: ``qid Q0 cid rank score tag``, one line per retrieved candidate.

Lines of one query are written best first (descending score; among equal scores, dataset order)
with 1-based ranks. Scores are written with Python's shortest round-trip float format, so reading a
file back gives bit-identical scores. Scoring (:func:`hybrid_repro.evaluation.settings.evaluate_run`)
uses the scores only, never the rank column: ties are resolved by the pessimistic tie rule, and a
candidate missing from a truncated run counts as never retrieved (see ``evaluate_run``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import LareqaDataset, load_lareqa
from hybrid_repro.evaluation.ranking import ScoreRows
from hybrid_repro.evaluation.settings import SETTINGS, EvaluationResult, evaluate_run
from hybrid_repro.io import atomic_output_file, sha256_file, write_json

Ranking = tuple[str, Sequence[str], Sequence[float]]
"""One query's ranking: (qid, candidate ids, their scores), in any order."""


def write_run_file(
    path: str | Path, rankings: Iterable[Ranking], *, tag: str = "hybrid-repro", top_k: int | None = None
) -> int:
    """Write rankings as a TREC run file (atomically), keeping the best ``top_k`` per query (all if None).

    Returns the number of lines written.
    """
    if not tag or any(ch.isspace() for ch in tag):
        raise HybridReproError(f"run tag must be a non-empty word without spaces, got {tag!r}")
    if top_k is not None and top_k < 1:
        raise HybridReproError(f"top_k must be at least 1, got {top_k}")
    lines = 0
    with atomic_output_file(path) as handle:
        for qid, cids, scores in rankings:
            scores = np.asarray(scores, dtype=np.float64)
            order = np.argsort(-scores, kind="stable")[:top_k]
            for rank, i in enumerate(order, start=1):
                handle.write(f"{qid} Q0 {cids[i]} {rank} {float(scores[i])!r} {tag}\n")
            lines += len(order)
    return lines


def _parse_line(line: str, number: int, path: Path) -> tuple[str, str, float]:
    fields = line.split()
    if len(fields) != 6:
        raise HybridReproError(f"{path}:{number}: expected 6 fields 'qid Q0 cid rank score tag', got {len(fields)}")
    qid, _, cid, rank, score, _ = fields
    try:
        int(rank)
        value = float(score)
    except ValueError as exc:
        raise HybridReproError(f"{path}:{number}: rank must be an integer and score a number ({exc})") from exc
    if math.isnan(value):
        raise HybridReproError(f"{path}:{number}: score is NaN; rankings need comparable scores")
    return qid, cid, value


def read_run_file(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file into ``{qid: {cid: score}}``; malformed lines and repeated pairs are errors."""
    path = Path(path)
    run: dict[str, dict[str, float]] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                qid, cid, score = _parse_line(line, number, path)
                ranking = run.setdefault(qid, {})
                if cid in ranking:
                    raise HybridReproError(f"{path}:{number}: candidate {cid} listed twice for query {qid}")
                ranking[cid] = score
    except FileNotFoundError as exc:
        raise HybridReproError(f"run file {path} not found") from exc
    except UnicodeDecodeError as exc:
        raise HybridReproError(f"run file {path} is not UTF-8 text: {exc}") from exc
    if not run:
        raise HybridReproError(f"run file {path} is empty")
    return run


def _candidate_scope(
    dataset: LareqaDataset, setting: str, target_language: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(query indices, for each the language its candidates must have: >= 0 that language,
    -1 any language, -2 any language but the query's own)."""
    if setting not in SETTINGS:
        raise HybridReproError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if target_language is not None and (setting != "cr" or target_language not in dataset.languages):
        raise HybridReproError(
            f"target_language {target_language!r} needs setting 'cr' and one of {list(dataset.languages)}"
        )
    query_lang = dataset.question_lang_index
    everyone = np.arange(len(query_lang))
    if setting == "mul":
        return everyone, np.full(len(query_lang), -1)
    if setting == "mo":
        return everyone, query_lang
    if target_language is None:
        return everyone, np.full(len(query_lang), -2)
    target = dataset.languages.index(target_language)
    queries = np.flatnonzero(query_lang != target)
    return queries, np.full(len(queries), target)


def setting_rankings(
    dataset: LareqaDataset,
    score_rows: ScoreRows,
    setting: str,
    target_language: str | None = None,
    *,
    top_k: int = 100,
    chunk_size: int = 256,
    progress: bool = True,
) -> Iterator[Ranking]:
    """Top-``top_k`` rankings of one setting, for :func:`write_run_file`.

    ``score_rows`` gives score rows over the full pool (e.g.
    :func:`~hybrid_repro.evaluation.ranking.embedding_scorer`). Mo.: each question against its
    own language. Cr. with ``target_language``: every question of another language against the
    candidates of that language; without it: every question against the candidates of all other
    languages together, so restricting its list to one target language gives the Cr. ranking of
    that pair (truncated where not all of them made the top ``top_k``). Mul.: all candidates.
    Which of several candidates tied at the cut-off is kept is unspecified.
    """
    queries, scope = _candidate_scope(dataset, setting, target_language)
    for _, ranking in _top_k_rankings(dataset, score_rows, queries, {setting: scope}, top_k, chunk_size, progress):
        yield ranking


def rankings_by_setting(
    dataset: LareqaDataset,
    score_rows: ScoreRows,
    settings: Sequence[str] = SETTINGS,
    *,
    top_k: int = 100,
    chunk_size: int = 256,
    progress: bool = True,
) -> dict[str, list[Ranking]]:
    """:func:`setting_rankings` of several settings (Cr. without a target) from one scoring pass."""
    if not settings:
        raise HybridReproError("rankings_by_setting needs at least one setting")
    scopes = {}
    for setting in settings:
        queries, scopes[setting] = _candidate_scope(dataset, setting, None)
    rankings: dict[str, list[Ranking]] = {setting: [] for setting in settings}
    for setting, ranking in _top_k_rankings(dataset, score_rows, queries, scopes, top_k, chunk_size, progress):
        rankings[setting].append(ranking)
    return rankings


def _top_k_rankings(
    dataset: LareqaDataset,
    score_rows: ScoreRows,
    queries: np.ndarray,
    scopes: dict[str, np.ndarray],
    top_k: int,
    chunk_size: int,
    progress: bool,
) -> Iterator[tuple[str, Ranking]]:
    """(setting, ranking) per query and setting; each chunk of queries is scored once for every setting."""
    if top_k < 1:
        raise HybridReproError(f"top_k must be at least 1, got {top_k}")
    cand_lang = torch.from_numpy(dataset.candidate_lang_index)[None, :]
    own_lang = torch.from_numpy(dataset.question_lang_index)
    cids, qids = dataset.candidates.cid, dataset.questions.qid
    desc = f"run {'/'.join(scopes)}"
    for start in tqdm(range(0, len(queries), chunk_size), desc=desc, unit="chunk", disable=not progress):
        chunk = queries[start : start + chunk_size]
        all_scores = score_rows(chunk)
        device = all_scores.device
        lang = cand_lang.to(device)
        own = own_lang[chunk][:, None].to(device)
        for setting, scope in scopes.items():
            wanted = torch.from_numpy(scope[start : start + chunk_size])[:, None].to(device)
            allowed = (wanted == -1) | (lang == wanted) | ((wanted == -2) & (lang != own))
            scores = all_scores.masked_fill(~allowed, -torch.inf)
            top = scores.topk(min(top_k, scores.shape[1]), dim=1)
            for q, values, indices in zip(chunk.tolist(), top.values.cpu().numpy(), top.indices.cpu().numpy()):
                # dataset order among equal scores, so write_run_file breaks ties reproducibly
                kept = np.isfinite(values)
                order = np.argsort(indices[kept], kind="stable")
                yield setting, (qids[q], [cids[i] for i in indices[kept][order]], values[kept][order])


def score_run_file(
    run_path: Path,
    data_dir: Path,
    setting: str,
    target_language: str | None = None,
    *,
    out: Path | None = None,
    require_all_queries: bool = True,
) -> EvaluationResult:
    """Score a TREC run file against the dataset in ``data_dir`` in one setting (``hybrid-repro score``).

    With ``out``, writes the metrics document (:meth:`EvaluationResult.to_metrics_json`, with the
    run file's path and sha256 added) there, atomically.
    """
    dataset = load_lareqa(data_dir)
    run = read_run_file(run_path)
    result = evaluate_run(dataset, run, setting, target_language, require_all_queries=require_all_queries)
    if out is not None:
        extra = {"run_file": str(run_path), "run_sha256": sha256_file(run_path), "target_language": target_language}
        write_json(out, result.to_metrics_json(extra))
    return result
