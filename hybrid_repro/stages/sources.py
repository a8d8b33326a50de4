"""Stages of pipelines/paper/dvc.yaml: ``source@NAME`` (one of the paper's sources, pinned, normalised,
sharded) and ``models`` (the pinned MT model and encoder into the hub cache, so that every later stage
runs with ``HF_HUB_OFFLINE=1``).

Fetches source ``NAME`` of ``params.sources`` at its pinned revision (or URL and sha256), turns its
records into :mod:`~hybrid_repro.sources.shards` rows, mines negatives where the source has none,
and writes ``<sources.out_dir>/NAME`` atomically: a failure leaves the previous output or none.
The CLI sets the hub environment (:func:`~hybrid_repro.sources.fetch.configure_hub_environment`)
before this module runs.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from hybrid_repro.config import Params, SourceConfig, SourcesConfig
from hybrid_repro.data.mt_families import translation_model_name
from hybrid_repro.sources import fetch as source_fetch
from hybrid_repro.sources.files import read_entityquestions, read_mmarco
from hybrid_repro.sources.pin import check_against_lock
from hybrid_repro.sources.shards import write_source
from hybrid_repro.sources.specs import SPECS, RawPair, SourceSpec
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, write_json


def sources_of(params: Params) -> SourcesConfig:
    """The ``sources`` section, or a clear error for a profile without one."""
    if params.sources is None:
        raise HybridReproError(f"profile {params.profile!r} has no sources section: the source stages belong to "
                               "the paper profiles (cp profiles/paper-xlmr.yaml params.yaml)")
    return params.sources


def _hub_pairs(spec: SourceSpec, settings: SourceConfig, key: str) -> Iterator[RawPair]:
    for config in spec.configs:
        rows = source_fetch.guarded(spec.name, spec.repo, key, lambda config=config: source_fetch.load_hub_split(
            spec.repo, config, spec.split, settings.revision, spec.parquet_export))
        for row in rows:
            yield from spec.read_row(row, config)  # type: ignore[misc]


def _hub_file_pairs(spec: SourceSpec, settings: SourceConfig, key: str, pin_lock: Optional[Path]) -> Iterator[RawPair]:
    files = {name: source_fetch.guarded(spec.name, spec.repo, key, lambda name=name: source_fetch.download_hub_file(
        spec.repo, name, settings.revision)) for name in spec.files}
    if pin_lock is not None:
        check_against_lock(pin_lock, key, settings.revision, files)  # type: ignore[arg-type]
    return read_mmarco(files, spec.languages, settings.max_pairs)


def url_pin(spec: SourceSpec, settings: SourceConfig, download_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Download a URL source and check it; return the archive and the receipt's pin (url, sha256, and whether
    the digest was recorded at the first download because no public checksum exists)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    archive = download_dir / Path(spec.url).name  # type: ignore[arg-type]
    key = f"sources.datasets.{spec.name}.sha256"
    digest = source_fetch.fetch_verified_url(spec.name, spec.url, settings.sha256, key, archive)  # type: ignore[arg-type]
    pin: dict[str, Any] = {"sha256": digest, "url": spec.url}
    if settings.sha256 is None:
        pin["sha256_source"] = ("recorded at the first download (no public checksum exists); later downloads are "
                                f"checked against {archive.name}.sha256 in sources.cache_dir")
    return archive, pin


def raw_pairs(spec: SourceSpec, settings: SourceConfig, archive: Optional[Path] = None,
              pin_lock: Optional[Path] = None) -> Iterator[RawPair]:
    """The source's pairs in source order, at most ``max_pairs`` (per language for mMARCO's triples), streamed.

    Reading happens inside the fetch guard too: a truncated file often fails only when read.
    """
    key = f"sources.datasets.{spec.name}.{spec.pin_key}"
    pairs: Iterable[RawPair]
    if spec.kind == "hub":
        pairs = itertools.islice(_hub_pairs(spec, settings, key), settings.max_pairs)
    elif spec.kind == "hub-files":
        pairs = _hub_file_pairs(spec, settings, key, pin_lock)
    else:
        pairs = read_entityquestions(archive, settings.max_pairs)  # type: ignore[arg-type]
    return source_fetch.guarded_iter(spec.name, spec.repo, key, pairs)


def run_source(params: Params, name: str) -> dict[str, Any]:
    """Write ``<sources.out_dir>/<name>`` (shards and manifest); return the manifest."""
    sources = sources_of(params)
    settings, spec = sources.source(name), SPECS[name]
    started = time.perf_counter()
    archive, pin = None, {spec.pin_key: getattr(settings, spec.pin_key)}
    if spec.kind == "url":
        archive, pin = url_pin(spec, settings, sources.cache_dir / "downloads" / name)
    pairs = raw_pairs(spec, settings, archive, sources.pin_lock)
    with atomic_output_dir(sources.out_dir / name) as tmp:
        manifest = write_source(tmp, spec, pairs, pin, settings.negatives, params.seed, sources.shard_rows,
                                max_pairs=settings.max_pairs)
    counts = ", ".join(f"{language} {count}" for language, count in manifest["pairs"].items())
    print(f"source {name}: {counts} pairs in {len(manifest['shards'])} shard(s), negatives {settings.negatives}, "
          f"{time.perf_counter() - started:.1f}s -> {sources.out_dir / name}")
    return manifest


MODELS_RECORD = "models.json"


def run_fetch_models(params: Params) -> dict[str, Any]:
    """Download the translation model and the encoder at their pinned commits into the hub cache
    (``sources.cache_dir``) and record them in ``<sources.out_dir>/models.json``; return the record."""
    sources = sources_of(params)
    translation_model = translation_model_name(params.translate.backend, params.translate.model_name)
    wanted = [("translate.model_revision", translation_model, params.translate.model_revision),
              ("model.revision", params.model.name if params.model.source == "hub" else None, params.model.revision)]
    record = {}
    for key, repo, revision in wanted:
        if repo and revision:
            path = source_fetch.guarded("models", repo, key, lambda repo=repo, revision=revision:
                                        source_fetch.download_model_snapshot(repo, revision),
                                        source_fetch.hub_page(repo, model=True))
            files = sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file())
            if not any(name.endswith(".safetensors") for name in files):
                raise HybridReproError(f"models: {repo} at {key} {revision} has no safetensors weights (only other "
                                       "formats, which are not downloaded); pin a commit that has them, e.g. the "
                                       f"hub's safetensors conversion ({source_fetch.hub_page(repo, model=True)}"
                                       "/discussions), or run `hybrid-repro pin --update`")
            if sources.pin_lock is not None:
                check_against_lock(sources.pin_lock, key, revision, {name: path / name for name in files})
            record[repo] = {"revision": revision, "files": files}
            print(f"models: {repo} @ {revision} ({len(record[repo]['files'])} files) in {sources.cache_dir}")
    write_json(sources.out_dir / MODELS_RECORD, record)
    return record
