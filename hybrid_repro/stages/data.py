"""Stage ``data``: write the source corpus of ``params.data.source`` into ``params.data.out_dir``.

``synthetic``: the generated corpus (:mod:`hybrid_repro.data.source_corpus`). ``xquad``: the pinned
XQuAD files and, for their sentence splits, the pinned XQuAD-R files are fetched (sha256-checked;
from the directory in ``HYBRID_REPRO_DATA_MIRROR`` when set) into a temporary directory and turned
into a parallel corpus (:mod:`hybrid_repro.data.xquad`, :mod:`hybrid_repro.data.parallel_corpus`).
``paper``: the sources ``pipelines/paper/dvc.yaml`` fetched into ``sources.out_dir``, verified and
assembled for translation (:mod:`hybrid_repro.data.paper_corpus`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hybrid_repro.config import Params
from hybrid_repro.data.languages import SOURCE_LANGUAGE
from hybrid_repro.data.source_corpus import write_source_corpus
from hybrid_repro.data.synthetic import generate_corpus
from hybrid_repro.io import atomic_output_dir

XQUAD_SOURCE_LANGUAGE = "en"
XQUAD_DESCRIPTION = ("XQuAD questions with their answer sentence and a hard negative, parallel in every language "
                     "(professional translations of SQuAD v1.1 dev paragraphs)")


def run_data(params: Params) -> None:
    """Write the source corpus for ``params.data`` and ``params.seed``; the directory appears only when complete."""
    started = time.perf_counter()
    if params.data.source == "paper":
        summary = _write_paper(params)
    elif params.data.source == "xquad":
        summary = _write_xquad(params)
    else:
        summary = _write_synthetic(params)
    print(f"data: wrote {params.data.out_dir} in {time.perf_counter() - started:.1f}s ({summary})")


def _write_synthetic(params: Params) -> str:
    corpus = generate_corpus(params.data.synthetic, params.seed)
    with atomic_output_dir(params.data.out_dir) as tmp:
        manifest = write_source_corpus(tmp, corpus, SOURCE_LANGUAGE, params.seed)
    counts = ", ".join(f"{name} {info['train']}" for name, info in manifest["datasets"].items())
    return f"train examples: {counts}; val {len(corpus.val)}; eval questions {manifest['eval']['questions']}"


def _write_paper(params: Params) -> str:
    from hybrid_repro.data.paper_corpus import fetched_sources, write_paper_source

    # The config requires the sources section with data.source paper. (Not stages.sources.sources_of: that
    # module's fetch code imports torch, about 200 MB of memory this stage does not need.)
    sources = params.sources
    assert sources is not None
    # Every manifest is checked before the output directory is opened; the shards stream into it (each checked
    # against its sha256 as it is reached), and a shard that fails leaves no trace either: the directory is atomic.
    fetched = fetched_sources(sources, params.seed)
    with atomic_output_dir(params.data.out_dir) as tmp:
        manifest = write_paper_source(tmp, fetched, params.seed)
    counts = ", ".join(f"{name} {info['train'] or info['val']} ({info['origin']}"
                       f"{', validation' if info['role'] == 'validation' else ''})"
                       for name, info in manifest["datasets"].items())
    return f"paper sources from {sources.out_dir}: {counts}"


def _write_xquad(params: Params) -> str:
    from hybrid_repro.data.parallel_corpus import write_parallel_source
    from hybrid_repro.data.xquad import DATASET, build_parallel_corpus, read_language
    from hybrid_repro.evaluation.download import PINNED, fetch_lareqa

    xquad, splits = PINNED["xquad"], PINNED["xquad-r"]
    # Languages with XQuAD-R sentence splits: every XQuAD language but ro.
    languages = [lang for lang in xquad.languages if lang in splits.languages]
    with tempfile.TemporaryDirectory(prefix="xquad-") as scratch:
        raw = Path(scratch)
        fetch_lareqa("xquad", raw / "xquad")
        fetch_lareqa("xquad-r", raw / "xquad-r")
        by_language = {lang: read_language(raw / "xquad" / xquad.language_file.format(lang=lang),
                                           raw / "xquad-r" / splits.language_file.format(lang=lang))
                       for lang in languages}
    config = params.data.xquad
    corpus = build_parallel_corpus(by_language, source_language=XQUAD_SOURCE_LANGUAGE,
                                   val_articles=config.val_articles, negatives=config.negatives, seed=params.seed)
    provenance = {name: {"repository": pin.repository, "commit": pin.commit, "sha256": pin.sha256}
                  for name, pin in (("xquad", xquad), ("xquad-r", splits))}
    with atomic_output_dir(params.data.out_dir) as tmp:
        write_parallel_source(tmp, corpus, source_language=XQUAD_SOURCE_LANGUAGE,
                              dataset={"name": DATASET, "description": XQUAD_DESCRIPTION},
                              provenance=provenance, seed=params.seed)
    return (f"XQuAD in {', '.join(languages)}: {len(corpus.train)} training questions, "
            f"{len(corpus.val)} {XQUAD_SOURCE_LANGUAGE} validation questions from {len(corpus.val_articles)} articles")
