"""The three LAReQA settings and their macro-averaged metrics.

* **Mo.** (``mo``): queries of language X against the candidates of X.
* **Cr.** (``cr``): queries of X against the candidates of one other language Y, for every ordered
  pair (X, Y), X != Y.
* **Mul.** (``mul``): queries of X against the pooled candidates of all languages.

A query is scored in a setting only if it has at least one relevant candidate among the setting's
candidates. In XQuAD-R every query qualifies everywhere; in MLQA-R many Cr. queries have no
parallel in the target language and are dropped; ``n_queries`` reports how many were scored per
language (Mo., Mul.) or per pair (Cr.).

Averages are macro: per query language first (in Cr. first the mean over the queries of each
(X, Y) pair, then the mean over the target languages Y), then the mean over query languages.
Languages (and Cr. pairs) with no scored query are left out of the averages and the output.

Metrics (see :mod:`hybrid_repro.evaluation.metrics`): ``map`` (full ranking, primary),
``map@20`` (XTREME-R), ``r@1`` (Mo., Cr.), ``r@10`` (Mul.), ``mrr``, and ``rank_distance`` (Mul.).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import LareqaDataset
from hybrid_repro.evaluation.metrics import (
    MONO_CROSS_KEYS,
    MULTILINGUAL_KEYS,
    TIE_RULE,
    mono_cross_metrics,
    multilingual_metrics,
)
from hybrid_repro.evaluation.ranking import RelevantRanks, ScoreRows, embedding_scorer, rank_relevant

SETTINGS = ("mo", "cr", "mul")
RESERVED_KEYS = ("dataset", "candidate_text", "checksums", "tie_rule", "settings")


def _mean(values: np.ndarray) -> float | None:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else None


def _macro(rows: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> dict[str, float | None]:
    """Unweighted mean over the rows; ``None`` when no row was scored (e.g. Cr. with one language)."""
    return {key: float(np.mean([row[key] for row in rows.values()])) if rows else None for key in keys}


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-query metrics of one dataset in one or more settings, with their macro averages."""

    dataset: LareqaDataset
    settings: tuple[str, ...]
    queries: np.ndarray
    """(n,) indices of the questions that were ranked."""
    by_target: dict[str, np.ndarray]
    """Mo./Cr. metric -> (n, n_languages): the query's value against the candidates of each language
    (``nan`` where the query has no relevant candidate there). Column = query language is Mo."""
    pooled: dict[str, np.ndarray]
    """Mul. metric -> (n,)."""
    cr_targets: tuple[str, ...]
    """Target languages scored in Cr. (all languages, or the one ``--target``)."""

    def _query_language(self) -> np.ndarray:
        return self.dataset.question_lang_index[self.queries]

    def _language_rows(self, values: Mapping[str, np.ndarray], keys: Sequence[str]) -> tuple[dict, dict]:
        """Per query language: mean of each metric over its scored queries, and how many were scored."""
        per_language, counts = {}, {}
        query_language = self._query_language()
        for index, lang in enumerate(self.dataset.languages):
            selected = query_language == index
            scored = selected & ~np.isnan(values[keys[0]])
            if scored.any():
                per_language[lang] = {key: _mean(values[key][scored]) for key in keys}
                counts[lang] = int(scored.sum())
        return per_language, counts

    def _mono(self) -> dict:
        own = (np.arange(len(self.queries)), self._query_language())
        diagonal = {key: self.by_target[key][own] for key in MONO_CROSS_KEYS}
        per_language, counts = self._language_rows(diagonal, MONO_CROSS_KEYS)
        return {"mean": _macro(per_language, MONO_CROSS_KEYS), "per_language": per_language, "n_queries": counts}

    def _cross_pairs(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """(query language, target language, mask of the queries scored for the pair)."""
        query_language = self._query_language()
        for q_index, q_lang in enumerate(self.dataset.languages):
            for t_lang in self.cr_targets:
                t_index = self.dataset.languages.index(t_lang)
                if t_index == q_index:
                    continue
                scored = (query_language == q_index) & ~np.isnan(self.by_target["map"][:, t_index])
                if scored.any():
                    yield q_lang, t_lang, scored

    def _cross(self) -> dict:
        per_pair: dict[str, dict] = {}
        by_query_language: dict[str, dict[str, dict]] = {}
        for q_lang, t_lang, scored in self._cross_pairs():
            t_index = self.dataset.languages.index(t_lang)
            row = {key: _mean(self.by_target[key][scored, t_index]) for key in MONO_CROSS_KEYS}
            by_query_language.setdefault(q_lang, {})[t_lang] = row
            per_pair[f"{q_lang}-{t_lang}"] = {**row, "n_queries": int(scored.sum())}
        per_language = {lang: _macro(rows, MONO_CROSS_KEYS) for lang, rows in by_query_language.items()}
        return {"mean": _macro(per_language, MONO_CROSS_KEYS), "per_language": per_language, "per_pair": per_pair}

    def _multilingual(self) -> dict:
        per_language, counts = self._language_rows(self.pooled, MULTILINGUAL_KEYS)
        return {"mean": _macro(per_language, MULTILINGUAL_KEYS), "per_language": per_language, "n_queries": counts}

    def setting_summary(self, setting: str) -> dict:
        """The ``settings[setting]`` block of :meth:`to_metrics_json`."""
        if setting not in self.settings:
            raise HybridReproError(f"setting {setting!r} was not evaluated (evaluated: {', '.join(self.settings)})")
        return {"mo": self._mono, "cr": self._cross, "mul": self._multilingual}[setting]()

    def to_metrics_json(self, extra: Mapping[str, object] | None = None) -> dict:
        """The metrics document read by the report stage; ``extra`` keys go between header and settings."""
        extra = dict(extra or {})
        clash = sorted(set(extra) & set(RESERVED_KEYS))
        if clash:
            raise ValueError(f"extra keys {clash} would overwrite reserved metrics keys")
        return {
            "dataset": self.dataset.name,
            "candidate_text": self.dataset.candidate_text,
            "checksums": dict(self.dataset.checksums),
            "tie_rule": TIE_RULE,
            **extra,
            "settings": {setting: self.setting_summary(setting) for setting in self.settings},
        }

    def per_query_rows(self) -> list[dict]:
        """One row per scored (setting, query, target): for paired significance tests.

        Keys: ``setting``, ``qid``, ``query_language``, ``target_language`` (``"*"`` in Mul.) and
        the setting's metrics (``map``, ``map@20``, ``r@1`` or ``r@10``, ``mrr``, and
        ``rank_distance`` in Mul.).
        """
        langs = self.dataset.languages
        qids = [self.dataset.questions.qid[q] for q in self.queries]
        query_language = self._query_language()
        rows: list[dict] = []
        for setting in self.settings:
            if setting == "mul":
                for i, qid in enumerate(qids):
                    if np.isnan(self.pooled["map"][i]):
                        continue
                    values = {key: float(self.pooled[key][i]) for key in MULTILINGUAL_KEYS}
                    rows.append({"setting": "mul", "qid": qid, "query_language": langs[query_language[i]],
                                 "target_language": "*", **values})
                continue
            targets = (
                [(i, query_language[i]) for i in range(len(qids))]
                if setting == "mo"
                else [(i, langs.index(t)) for i in range(len(qids)) for t in self.cr_targets
                      if langs.index(t) != query_language[i]]
            )
            for i, t_index in targets:
                if np.isnan(self.by_target["map"][i, t_index]):
                    continue
                values = {key: float(self.by_target[key][i, t_index]) for key in MONO_CROSS_KEYS}
                rows.append({"setting": setting, "qid": qids[i], "query_language": langs[query_language[i]],
                             "target_language": langs[t_index], **values})
        return rows

    def format_table(self, setting: str) -> str:
        """A plain-text table of one setting: one line per query language, then the macro mean.

        Column ``n`` is the number of scored queries (in Cr. summed over the language's pairs).
        """
        summary = self.setting_summary(setting)
        keys = MULTILINGUAL_KEYS if setting == "mul" else MONO_CROSS_KEYS
        if setting == "cr":
            counts: dict[str, int] = {}
            for pair, row in summary["per_pair"].items():
                counts[pair.split("-")[0]] = counts.get(pair.split("-")[0], 0) + row["n_queries"]
        else:
            counts = summary["n_queries"]
        header = f"{self.dataset.name} {setting}".ljust(14) + "n".rjust(7) + "".join(key.rjust(15) for key in keys)
        lines = [header, "-" * len(header)]
        rows = [*((lang, counts[lang], row) for lang, row in summary["per_language"].items()),
                ("mean", sum(counts.values()), summary["mean"])]
        for lang, count, row in rows:
            cells = "".join("-".rjust(15) if row[key] is None else f"{row[key]:15.4f}" for key in keys)
            lines.append(lang.ljust(14) + str(count).rjust(7) + cells)
        return "\n".join(lines)


def _metrics_from_ranks(dataset: LareqaDataset, ranks: RelevantRanks) -> tuple[dict, dict]:
    per_target = [
        mono_cross_metrics(np.where(ranks.candidate_language == lang, ranks.own_language_rank, np.nan))
        for lang in range(len(dataset.languages))
    ]
    by_target = {key: np.stack([values[key] for values in per_target], axis=1) for key in MONO_CROSS_KEYS}
    pooled = multilingual_metrics(ranks.pooled_rank, pool_size=len(dataset.candidates))
    return by_target, pooled


def _check_settings(settings: Sequence[str]) -> tuple[str, ...]:
    settings = tuple(settings)
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise HybridReproError(f"settings must be a non-empty subset of {SETTINGS}, got {list(settings)}")
    return settings


def _check_matrix(name: str, emb: np.ndarray, rows: int, what: str) -> None:
    if not isinstance(emb, np.ndarray) or emb.ndim != 2:
        raise HybridReproError(f"{name} must be a 2-D numpy array ({what} x dim), got {type(emb).__name__}")
    if emb.shape[0] != rows:
        raise HybridReproError(f"{name} has {emb.shape[0]} rows but the dataset has {rows} {what}")
    if not np.isfinite(emb).all():
        raise HybridReproError(f"{name} contains NaN or infinite values: check the encoder output")


def check_embeddings(dataset: LareqaDataset, query_emb: np.ndarray, cand_emb: np.ndarray) -> None:
    """Embeddings must be finite 2-D arrays with one row per question / candidate and equal widths."""
    _check_matrix("query_emb", query_emb, len(dataset.questions), "questions")
    _check_matrix("cand_emb", cand_emb, len(dataset.candidates), "candidates")
    if query_emb.shape[1] != cand_emb.shape[1]:
        raise HybridReproError(f"embedding sizes differ: queries {query_emb.shape[1]}, candidates {cand_emb.shape[1]}")


def evaluate_embeddings(
    dataset: LareqaDataset,
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    *,
    settings: Sequence[str] = SETTINGS,
    progress: bool = True,
    queries: Sequence[int] | None = None,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
) -> EvaluationResult:
    """Score every question against the candidates by dot product (cosine for normalised embeddings).

    ``query_emb`` rows follow ``dataset.questions``, ``cand_emb`` rows ``dataset.candidates``.
    Scores are exact matrix products in float32 (float64 when both inputs are float64), computed
    ``chunk_size`` queries at a time on ``device`` (default: CUDA when present). ``queries``
    restricts scoring to some question indices (the candidate pools stay complete).
    """
    settings = _check_settings(settings)
    check_embeddings(dataset, query_emb, cand_emb)
    score_rows = embedding_scorer(query_emb, cand_emb, device)
    return evaluate_score_rows(
        dataset, score_rows, settings=settings, queries=queries, chunk_size=chunk_size, progress=progress
    )


def evaluate_score_rows(
    dataset: LareqaDataset,
    score_rows: ScoreRows,
    *,
    settings: Sequence[str] = SETTINGS,
    queries: Sequence[int] | None = None,
    chunk_size: int = 256,
    progress: bool = True,
) -> EvaluationResult:
    """Like :func:`evaluate_embeddings`, for any scorer: ``score_rows(indices)`` returns the
    questions' score rows over the full candidate pool (``-inf`` = not retrieved)."""
    settings = _check_settings(settings)
    selected = np.arange(len(dataset.questions)) if queries is None else np.asarray(queries, np.int64)
    ranks = rank_relevant(dataset, selected, score_rows, chunk_size=chunk_size, progress=progress)
    by_target, pooled = _metrics_from_ranks(dataset, ranks)
    return EvaluationResult(dataset, settings, selected, by_target, pooled, dataset.languages)


def _run_as_indices(
    dataset: LareqaDataset, run: Mapping[str, Mapping[str, float]]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Run -> {question index: (candidate indices, scores)}, rejecting ids the dataset lacks."""
    q_index, c_index = dataset.question_index(), dataset.candidate_index()
    unknown_q = [qid for qid in run if qid not in q_index]
    if unknown_q:
        raise HybridReproError(
            f"run has {len(unknown_q)} query id(s) not in {dataset.name} (first: {unknown_q[0]!r}); "
            "LAReQA query ids look like '<id>_<lang>': check the dataset and languages"
        )
    converted = {}
    for qid, ranking in run.items():
        unknown_c = [cid for cid in ranking if cid not in c_index]
        if unknown_c:
            raise HybridReproError(
                f"run ranks {len(unknown_c)} candidate id(s) not in {dataset.name} for {qid} "
                f"(first: {unknown_c[0]!r}); LAReQA candidate ids look like '<lang>_<paragraph>_<sentence>'"
            )
        converted[q_index[qid]] = (
            np.fromiter((c_index[cid] for cid in ranking), np.int64, len(ranking)),
            np.fromiter(ranking.values(), np.float64, len(ranking)),
        )
    return converted


def _scored_queries(dataset: LareqaDataset, setting: str, targets: tuple[str, ...]) -> np.ndarray:
    """Question indices with at least one relevant candidate among the setting's candidates."""
    target_index = {dataset.languages.index(t) for t in targets}
    keep = []
    for q, relevant in enumerate(dataset.relevance):
        own = int(dataset.question_lang_index[q])
        langs = set(dataset.candidate_lang_index[relevant].tolist())
        crosses = bool((langs & target_index) - {own})
        if setting == "mul" or (setting == "mo" and own in langs) or (setting == "cr" and crosses):
            keep.append(q)
    return np.array(keep, np.int64)


def evaluate_run(
    dataset: LareqaDataset,
    run: Mapping[str, Mapping[str, float]],
    setting: str,
    target_language: str | None = None,
    *,
    require_all_queries: bool = True,
    progress: bool = False,
) -> EvaluationResult:
    """Score an external run (``{qid: {cid: score}}``, e.g. from :func:`read_run_file`) in one setting.

    Ranks come from the scores (the pessimistic tie rule; any rank column of a run file is
    ignored) restricted to the setting's candidates: a Mul. run can therefore also be scored as
    Mo. or Cr. For ``cr``, ``target_language`` selects one target (queries of every other
    language); without it every ordered pair is scored from the same rankings.

    A truncated run (top-k per query) is scored as if every candidate it does not list were never
    retrieved: such a relevant candidate adds nothing to AP, AP@20, recall or reciprocal rank, and
    for the rank distance it counts as ranked last (rank = size of the setting's candidate pool).

    With ``require_all_queries`` (default) every query the setting scores must have a ranking in
    the run; otherwise only the run's queries are scored (``n_queries`` shows how many).
    """
    setting = _check_settings([setting])[0]
    if target_language is not None and (setting != "cr" or target_language not in dataset.languages):
        raise HybridReproError(
            f"target_language {target_language!r} needs setting 'cr' and one of {list(dataset.languages)}"
        )
    targets = (target_language,) if target_language else dataset.languages
    rankings = _run_as_indices(dataset, run)
    wanted = _scored_queries(dataset, setting, targets)
    if not wanted.size:
        raise HybridReproError(
            f"no query of {dataset.name} has a relevant candidate among the candidates of setting {setting!r}"
            + (f" (target {target_language})" if target_language else "")
        )
    missing = [q for q in wanted if q not in rankings]
    if missing and require_all_queries:
        raise HybridReproError(
            f"run has no ranking for {len(missing)} of the {len(wanted)} queries scored in {setting} "
            f"(first: {dataset.questions.qid[missing[0]]}); rank every query, or allow missing queries "
            "(hybrid-repro score --allow-missing-queries)"
        )
    selected = np.array([q for q in wanted if q in rankings], np.int64)
    if not selected.size:
        raise HybridReproError(f"run has no ranking for any query scored in setting {setting!r}")

    def score_rows(indices: np.ndarray) -> torch.Tensor:
        rows = np.full((len(indices), len(dataset.candidates)), -np.inf)
        for row, q in enumerate(indices):
            candidates, scores = rankings[q]
            rows[row, candidates] = scores
        return torch.from_numpy(rows)

    result = evaluate_score_rows(dataset, score_rows, settings=(setting,), queries=selected, progress=progress)
    return dataclasses.replace(result, cr_targets=targets)
