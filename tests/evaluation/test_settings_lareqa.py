"""The Mo./Cr./Mul. settings: a hand-computed case, run scoring, the metrics document, and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import Candidates, LareqaDataset, Questions
from hybrid_repro.evaluation.settings import evaluate_embeddings, evaluate_run, evaluate_score_rows


def make_dataset(pool_sizes: dict[str, int], answers: dict[str, dict[str, int]]) -> LareqaDataset:
    """One paragraph per language with ``pool_sizes[lang]`` sentences; ``answers[id][lang]`` is the
    answer sentence of question ``id`` in ``lang`` (the question exists in the languages listed)."""
    langs = tuple(pool_sizes)
    cids = [f"{lang}_1_{s}" for lang in langs for s in range(pool_sizes[lang])]
    index = {cid: i for i, cid in enumerate(cids)}
    questions = [(xid, lang) for lang in langs for xid, where in answers.items() if lang in where]
    relevance = tuple(
        np.array(sorted(index[f"{lang}_1_{s}"] for lang, s in answers[xid].items()), np.int64) for xid, _ in questions
    )
    return LareqaDataset(
        name="hand",
        candidate_text="sentence",
        languages=langs,
        questions=Questions(tuple(f"{x}_{lang}" for x, lang in questions), tuple(x for x, _ in questions),
                            tuple(lang for _, lang in questions), tuple(f"q {x} {lang}" for x, lang in questions)),
        candidates=Candidates(tuple(cids), tuple(c.split("_")[0] for c in cids), tuple(cids), tuple(cids)),
        relevance=relevance,
        checksums={lang: "0" * 64 for lang in langs},
    )


HAND = make_dataset({"en": 4, "de": 3, "zh": 2}, {"a": {"en": 0, "de": 1, "zh": 0}, "b": {"en": 2, "de": 0}})
# rows over en_1_0..3 | de_1_0..2 | zh_1_0..1; the expected values below are worked out by hand
HAND_SCORES = {
    "a_en": [0.9, 0.1, 0.2, 0.3, 0.5, 0.8, 0.0, 0.95, 0.4],
    "b_en": [0.1, 0.2, 0.3, 0.3, 0.0, 0.6, 0.6, 0.9, 0.9],
    "a_de": [0.0, 0.5, 0.5, 0.5, 0.2, 0.1, 0.3, 0.4, 0.6],
    "b_de": [0.2, 0.2, 0.7, 0.2, 0.9, 0.1, 0.1, 0.0, 0.0],
    "a_zh": [0.3, 0.0, 0.0, 0.0, 0.3, 0.3, 0.3, 0.1, 0.2],
}
HAND_RUN = {qid: dict(zip(HAND.candidates.cid, row)) for qid, row in HAND_SCORES.items()}


def hand_score_rows(indices: np.ndarray) -> torch.Tensor:
    return torch.tensor([HAND_SCORES[HAND.questions.qid[q]] for q in indices], dtype=torch.float64)


def rows_by_key(result) -> dict[tuple[str, str, str], dict]:
    return {(r["setting"], r["qid"], r["target_language"]): r for r in result.per_query_rows()}


def test_hand_case_per_query_values():
    rows = rows_by_key(evaluate_score_rows(HAND, hand_score_rows, progress=False))
    expected_map = {
        ("mo", "a_en", "en"): 1, ("mo", "b_en", "en"): 1 / 2, ("mo", "a_de", "de"): 1 / 3,
        ("mo", "b_de", "de"): 1, ("mo", "a_zh", "zh"): 1 / 2,
        ("cr", "a_en", "de"): 1, ("cr", "a_en", "zh"): 1, ("cr", "b_en", "de"): 1 / 3,
        ("cr", "a_de", "en"): 1 / 4, ("cr", "a_de", "zh"): 1 / 2, ("cr", "b_de", "en"): 1,
        ("cr", "a_zh", "en"): 1, ("cr", "a_zh", "de"): 1 / 3,
        ("mul", "a_en", "*"): 1, ("mul", "b_en", "*"): (1 / 6 + 2 / 9) / 2,
        ("mul", "a_de", "*"): (1 / 5 + 2 / 8 + 3 / 9) / 3,
        ("mul", "b_de", "*"): 1, ("mul", "a_zh", "*"): (2 / 4 + 2 / 4 + 3 / 6) / 3,
    }
    assert {key: row["map"] for key, row in rows.items()} == pytest.approx(expected_map)
    assert [rows[("mul", q, "*")]["rank_distance"] for q in HAND_SCORES] == [2, 3, 4, 1, 2]
    assert [rows[("mul", q, "*")]["mrr"] for q in HAND_SCORES] == pytest.approx([1, 1 / 6, 1 / 5, 1, 1 / 4])
    assert [rows[("mo", q, q[-2:])]["r@1"] for q in HAND_SCORES] == [1, 0, 0, 1, 0]


def test_hand_case_macro_averages_and_dropped_pairs():
    metrics = evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json()["settings"]
    mo, cr, mul = metrics["mo"], metrics["cr"], metrics["mul"]
    assert mo["n_queries"] == mul["n_queries"] == {"en": 2, "de": 2, "zh": 1}
    assert {lang: row["map"] for lang, row in mo["per_language"].items()} == pytest.approx(
        {"en": 0.75, "de": 2 / 3, "zh": 0.5})
    assert mo["mean"]["map"] == pytest.approx((0.75 + 2 / 3 + 0.5) / 3)
    assert mo["mean"]["r@1"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    # b has no zh version: en-zh and de-zh score one query each
    assert {pair: row["n_queries"] for pair, row in cr["per_pair"].items()} == {
        "en-de": 2, "en-zh": 1, "de-en": 2, "de-zh": 1, "zh-en": 1, "zh-de": 1}
    assert cr["per_pair"]["en-de"]["map"] == pytest.approx(2 / 3)
    # macro over target languages first: en = mean(2/3, 1), not the mean of its three query scores
    assert {lang: row["map"] for lang, row in cr["per_language"].items()} == pytest.approx(
        {"en": 5 / 6, "de": 0.5625, "zh": 2 / 3})
    assert cr["mean"]["map"] == pytest.approx((5 / 6 + 0.5625 + 2 / 3) / 3)
    assert mul["per_language"]["en"]["map"] == pytest.approx((1 + (1 / 6 + 2 / 9) / 2) / 2)
    assert mul["mean"]["rank_distance"] == pytest.approx((2.5 + 2.5 + 2) / 3)


def test_metrics_document_has_exactly_the_agreed_shape():
    doc = evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json({"run": "r1", "seed": 3})
    assert list(doc) == ["dataset", "candidate_text", "checksums", "tie_rule", "run", "seed", "settings"]
    assert list(doc["settings"]) == ["mo", "cr", "mul"]
    mono_keys, mul_keys = ["map", "map@20", "r@1", "mrr"], ["map", "map@20", "r@10", "mrr", "rank_distance"]
    assert list(doc["settings"]["mo"]) == ["mean", "per_language", "n_queries"]
    assert list(doc["settings"]["cr"]) == ["mean", "per_language", "per_pair"]
    assert list(doc["settings"]["mul"]) == ["mean", "per_language", "n_queries"]
    assert list(doc["settings"]["mo"]["mean"]) == list(doc["settings"]["cr"]["per_language"]["en"]) == mono_keys
    assert list(doc["settings"]["cr"]["per_pair"]["en-de"]) == [*mono_keys, "n_queries"]
    assert list(doc["settings"]["mul"]["per_language"]["zh"]) == mul_keys
    assert all(isinstance(v, float) for v in doc["settings"]["mul"]["mean"].values())
    with pytest.raises(ValueError, match="reserved"):
        evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json({"settings": 1})


def test_per_query_rows_cover_every_scored_query_and_pair():
    rows = evaluate_score_rows(HAND, hand_score_rows, progress=False).per_query_rows()
    assert [sum(r["setting"] == s for r in rows) for s in ("mo", "cr", "mul")] == [5, 8, 5]
    assert set(rows[0]) == {"setting", "qid", "query_language", "target_language", "map", "map@20", "r@1", "mrr"}


def test_full_run_scores_like_the_score_rows_in_every_setting():
    direct = evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json()["settings"]
    for setting in ("mo", "cr", "mul"):
        assert evaluate_run(HAND, HAND_RUN, setting).to_metrics_json()["settings"][setting] == direct[setting]


def test_cr_run_with_one_target_scores_only_that_column():
    cr = evaluate_run(HAND, HAND_RUN, "cr", "zh").to_metrics_json()["settings"]["cr"]
    assert {pair: row["n_queries"] for pair, row in cr["per_pair"].items()} == {"en-zh": 1, "de-zh": 1}
    assert cr["mean"]["map"] == pytest.approx((1 + 0.5) / 2)


def test_truncated_run_counts_missing_relevant_as_never_retrieved():
    top6 = {qid: dict(sorted(run.items(), key=lambda kv: -kv[1])[:6]) for qid, run in HAND_RUN.items()}
    rows = rows_by_key(evaluate_run(HAND, top6, "mul"))
    # a_de: relevant at pooled ranks 5, 8, 9; only rank 5 survives the cut
    row = rows[("mul", "a_de", "*")]
    assert row["map"] == pytest.approx((1 / 5) / 3)
    assert row["r@10"] == pytest.approx(1 / 3)
    assert row["mrr"] == pytest.approx(1 / 5)
    assert row["rank_distance"] == 9 - 5  # missing ones sit at the pool size (9)


def test_run_errors_are_clear():
    with pytest.raises(HybridReproError, match="query id.*'x_en'"):
        evaluate_run(HAND, {**HAND_RUN, "x_en": {}}, "mul")
    with pytest.raises(HybridReproError, match="candidate id.*'fr_1_0'"):
        evaluate_run(HAND, {**HAND_RUN, "a_en": {"fr_1_0": 1.0}}, "mul")
    partial = {"a_en": HAND_RUN["a_en"]}
    with pytest.raises(HybridReproError, match="no ranking for 4 of the 5 queries"):
        evaluate_run(HAND, partial, "mul")
    assert evaluate_run(HAND, partial, "mul", require_all_queries=False).to_metrics_json()["settings"]["mul"][
        "n_queries"] == {"en": 1}
    with pytest.raises(HybridReproError, match="needs setting 'cr'"):
        evaluate_run(HAND, HAND_RUN, "mo", "de")
    with pytest.raises(HybridReproError, match="settings must be"):
        evaluate_run(HAND, HAND_RUN, "xx")
    one_language = make_dataset({"en": 2}, {"a": {"en": 0}})
    with pytest.raises(HybridReproError, match="no query of hand has a relevant candidate .* 'cr'"):
        evaluate_run(one_language, {"a_en": {"en_1_0": 1.0}}, "cr")
    nothing_crosses = evaluate_score_rows(one_language, lambda idx: torch.ones(len(idx), 2), progress=False)
    assert nothing_crosses.to_metrics_json()["settings"]["cr"] == {
        "mean": dict.fromkeys(["map", "map@20", "r@1", "mrr"]), "per_language": {}, "per_pair": {}}
    assert nothing_crosses.format_table("cr").splitlines()[-1].split() == ["mean", "0", "-", "-", "-", "-"]


def test_embeddings_path_checks_its_inputs_and_ignores_chunking():
    rng = np.random.default_rng(1)
    q, c = rng.standard_normal((5, 3)), rng.standard_normal((9, 3))
    whole = evaluate_embeddings(HAND, q, c, progress=False).to_metrics_json()
    assert evaluate_embeddings(HAND, q, c, chunk_size=1, progress=False).to_metrics_json() == whole
    run = {qid: dict(zip(HAND.candidates.cid, (q[i] @ c.T).tolist())) for i, qid in enumerate(HAND.questions.qid)}
    assert evaluate_run(HAND, run, "mul").to_metrics_json()["settings"]["mul"] == whole["settings"]["mul"]
    with pytest.raises(HybridReproError, match="cand_emb has 8 rows"):
        evaluate_embeddings(HAND, q, c[:8], progress=False)
    with pytest.raises(HybridReproError, match="NaN"):
        evaluate_embeddings(HAND, np.full((5, 3), np.nan), c, progress=False)
    with pytest.raises(HybridReproError, match="sizes differ"):
        evaluate_embeddings(HAND, q, c[:, :2], progress=False)


LANGS = ("en", "de", "zh")


@st.composite
def pools(draw):
    langs = LANGS[: draw(st.integers(1, 3))]
    sizes = {lang: draw(st.integers(1, 6)) for lang in langs}
    answers = {}
    for i in range(draw(st.integers(1, 5))):
        where = draw(st.lists(st.sampled_from(langs), min_size=1, max_size=len(langs), unique=True))
        answers[f"q{i}"] = {lang: draw(st.integers(0, sizes[lang] - 1)) for lang in where}
    return make_dataset(sizes, answers), draw(st.integers(0, 2**32 - 1))


def scorable_settings(ds: LareqaDataset) -> list[str]:
    """Mo. and Mul. always; Cr. when some question has a relevant candidate in another language."""
    crosses = any(len(set(ds.candidate_lang_index[r].tolist())) > 1 for r in ds.relevance)
    return ["mo", "mul", *(["cr"] if crosses else [])]


def perfect_run(ds: LareqaDataset, seed: int) -> dict[str, dict[str, float]]:
    """Relevant candidates above every other, all scores distinct."""
    rng = np.random.default_rng(seed)
    run = {}
    for q, qid in enumerate(ds.questions.qid):
        scores = rng.permutation(len(ds.candidates)).astype(float)
        scores[ds.relevance[q]] += 10 * len(ds.candidates)
        run[qid] = dict(zip(ds.candidates.cid, scores))
    return run


@settings(max_examples=60, deadline=None)
@given(pools())
def test_perfect_ranking_is_perfect(case):
    ds, seed = case
    run = perfect_run(ds, seed)
    for setting in scorable_settings(ds):
        for row in evaluate_run(ds, run, setting).per_query_rows():
            assert row["map"] == row["map@20"] == row["mrr"] == 1.0
            if setting == "mul":
                n_relevant = len(ds.relevance[ds.question_index()[row["qid"]]])
                assert row["rank_distance"] == n_relevant - 1
            else:
                assert row["r@1"] == 1.0


@settings(max_examples=60, deadline=None)
@given(pools())
def test_reversed_ranking_is_the_analytic_worst_case(case):
    ds, seed = case
    run = {qid: {cid: -s for cid, s in scores.items()} for qid, scores in perfect_run(ds, seed).items()}
    block_size = {lang: stop - start for lang, (start, stop) in zip(ds.languages, ds.language_blocks)}
    n = len(ds.candidates)
    for setting in scorable_settings(ds):
        for row in evaluate_run(ds, run, setting).per_query_rows():
            if setting == "mul":
                r = len(ds.relevance[ds.question_index()[row["qid"]]])
                assert row["map"] == pytest.approx(sum(i / (n - r + i) for i in range(1, r + 1)) / r)
                assert row["mrr"] == pytest.approx(1 / (n - r + 1))
                assert row["rank_distance"] == r - 1
            else:
                pool = block_size[row["target_language"]]
                assert row["map"] == pytest.approx(1 / pool)
                assert row["r@1"] == (1.0 if pool == 1 else 0.0)


def reordered(ds: LareqaDataset, rng: np.random.Generator) -> LareqaDataset:
    """The same pools with languages, candidates within each language and questions shuffled."""
    langs = [ds.languages[i] for i in rng.permutation(len(ds.languages))]
    order = np.concatenate([start + rng.permutation(stop - start)
                            for start, stop in (ds.language_blocks[ds.languages.index(lang)] for lang in langs)])
    new_position = np.empty(len(order), np.int64)
    new_position[order] = np.arange(len(order))
    q_order = rng.permutation(len(ds.questions))
    pick = lambda values, idx: tuple(values[i] for i in idx)  # noqa: E731
    return LareqaDataset(
        name=ds.name, candidate_text=ds.candidate_text, languages=tuple(langs),
        questions=Questions(*(pick(getattr(ds.questions, f), q_order) for f in ("qid", "id", "lang", "text"))),
        candidates=Candidates(
            *(pick(getattr(ds.candidates, f), order) for f in ("cid", "lang", "sentence", "context"))
        ),
        relevance=tuple(np.sort(new_position[ds.relevance[q]]) for q in q_order),
        checksums=ds.checksums,
    )


@settings(max_examples=60, deadline=None)
@given(pools())
def test_metrics_do_not_depend_on_input_order_even_with_ties(case):
    ds, seed = case
    rng = np.random.default_rng(seed)
    run = {qid: {cid: float(rng.integers(0, 3)) for cid in ds.candidates.cid} for qid in ds.questions.qid}
    shuffled = reordered(ds, rng)
    for setting in scorable_settings(ds):
        assert rows_by_key(evaluate_run(shuffled, run, setting)) == rows_by_key(evaluate_run(ds, run, setting))
