"""``hybrid-repro pin PARAMS``: resolve the hub pins of a profile (or of the MIRACL params) online, verify the
filled ones, write them into the file in place and a lock beside it.

A *pin* is one params key that holds the commit of one hub repository: ``translate.model_revision`` (the
translation model), ``model.revision`` (a hub encoder), ``sources.datasets.<name>.revision`` (a source) and
``miracl.topics_revision`` / ``miracl.corpus_revision``. A null pin is resolved to the commit of ``main``
(``repo_info(...).sha``), or for a source read from the hub's Parquet conversion to the target of
``refs/convert/parquet`` (``list_repo_refs(...).converts``). A filled pin is left as it is unless ``update``;
``verify`` checks that every filled pin is a commit of its repository. The lock (``<file stem>.lock.json``
beside the file) records per pin the repository as named and its canonical id after renames, the commit, and
per file its size and content hash (LFS sha256, else the git blob id), read with ``get_paths_info``, which
drops missing paths silently: a file listed but not described is an error.

The file is edited with ruamel.yaml's round trip, which keeps comments, quoting and flow style (PyYAML would
drop comments); hashes are written single-quoted, as an all-digit hash would load as a number, and ``null``
stays ``null``.
"""

from __future__ import annotations

import fnmatch
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from hybrid_repro.data.mt_families import translation_model_name
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.miracl_data import CORPUS_REPO, TOPICS_REPO
from hybrid_repro.io import atomic_output_file, git_blob_digest, read_json, sha256_file, write_json
from hybrid_repro.sources.fetch import MODEL_FILE_PATTERNS, explain_fetch_error, hub_page
from hybrid_repro.sources.specs import SPECS

MAIN = "main"
PARQUET = "refs/convert/parquet"
LOCK_WRITER = "hybrid-repro pin"
PATHS_PER_REQUEST = 200


@dataclass(frozen=True)
class Pin:
    """One pinning key: where it sits in the params mapping, the repository it pins and the branch it follows."""

    key: tuple[str, ...]
    repo: str
    repo_type: str  # "model" or "dataset"
    branch: str  # MAIN or PARQUET
    value: Optional[str]
    file_patterns: tuple[str, ...] = ("*",)
    # When set, the only paths recorded: the files a repository of files is read by, or the config folders of a
    # Parquet conversion (each must exist at the commit).
    files: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return ".".join(self.key)

    @property
    def page(self) -> str:
        return hub_page(self.repo, model=self.repo_type == "model")


def pins_of(data: dict[str, Any]) -> list[Pin]:
    """Every pin a params mapping holds (a root-pipeline profile, or the MIRACL params)."""
    pins = []
    miracl = data.get("miracl")
    if isinstance(miracl, dict):
        for field, repo in (("topics_revision", TOPICS_REPO), ("corpus_revision", CORPUS_REPO)):
            pins.append(Pin(("miracl", field), repo, "dataset", MAIN, miracl.get(field)))
    translate = data.get("translate") or {}
    model_name = translation_model_name(translate.get("backend", ""), translate.get("model_name"))
    if model_name and "model_revision" in translate:
        pins.append(Pin(("translate", "model_revision"), model_name, "model", MAIN, translate["model_revision"],
                        MODEL_FILE_PATTERNS))
    model = data.get("model") or {}
    if model.get("source") == "hub" and model.get("name"):
        pins.append(Pin(("model", "revision"), model["name"], "model", MAIN, model.get("revision"),
                        MODEL_FILE_PATTERNS))
    for name, source in ((data.get("sources") or {}).get("datasets") or {}).items():
        spec = SPECS.get(name)
        if spec is None or spec.kind == "url":
            continue  # an unknown name is the params check's to report; URL sources are pinned by sha256
        folders = tuple(config for config in spec.configs if config) if spec.parquet_export else ()
        pins.append(Pin(("sources", "datasets", name, "revision"), spec.repo, "dataset",
                        PARQUET if spec.parquet_export else MAIN, (source or {}).get("revision"),
                        files=spec.files or folders))
    return pins


# A connection the server closed while idle (keep-alive) fails the next request on it: retried on a new one.
TRANSIENT = {"ReadError", "RemoteProtocolError", "ConnectionResetError", "ReadTimeout"}
ATTEMPTS = 3


def _hub_call(pin: Pin, call: Callable[[], Any]) -> Any:
    """``call()`` with the hub's failures turned into one line naming the key and what to do."""
    what = f"pin {pin.name} ({pin.repo})"
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - only transient connection failures are retried
                if attempt == ATTEMPTS or not {cls.__name__ for cls in type(exc).__mro__} & TRANSIENT:
                    raise
                time.sleep(0.5 * attempt)
    except HybridReproError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged unless it is a known hub failure
        explained = explain_fetch_error(pin.repo, pin.repo, pin.name, exc, pin.page, what=what)
        if explained is None:
            raise
        raise explained from exc


def resolve_commit(api, pin: Pin) -> str:
    """The commit the pin's branch points at now."""
    if pin.branch == PARQUET:
        refs = _hub_call(pin, lambda: api.list_repo_refs(pin.repo, repo_type=pin.repo_type))
        for ref in refs.converts:
            if ref.ref == PARQUET:
                return ref.target_commit
        raise HybridReproError(f"pin {pin.name} ({pin.repo}): the repository has no Parquet conversion "
                               f"({PARQUET}); its loading script cannot run under datasets 5 (docs/data.md)")
    return _hub_call(pin, lambda: api.repo_info(pin.repo, repo_type=pin.repo_type, revision=MAIN)).sha


def describe_commit(api, pin: Pin, commit: str) -> dict[str, Any]:
    """The lock entry of ``pin`` at ``commit``: canonical id and every recorded file's size and hash.

    Raises when the commit is not one of the repository's (a branch name or a short hash included).
    """
    info = _hub_call(pin, lambda: api.repo_info(pin.repo, repo_type=pin.repo_type, revision=commit))
    if info.sha != commit:
        raise HybridReproError(f"pin {pin.name} ({pin.repo}): {commit!r} resolves to commit {info.sha}; pin the "
                               f"full commit hash ({pin.page}/commits/{MAIN})")
    names = list(pin.files) or sorted(sibling.rfilename for sibling in info.siblings or []
                                      if any(fnmatch.fnmatch(sibling.rfilename, p) for p in pin.file_patterns))
    files: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), PATHS_PER_REQUEST):
        batch = names[start:start + PATHS_PER_REQUEST]
        for entry in _hub_call(pin, lambda batch=batch: api.get_paths_info(pin.repo, batch, repo_type=pin.repo_type,
                                                                         revision=commit)):
            lfs = getattr(entry, "lfs", None)
            if not hasattr(entry, "size"):  # a folder (a config of a Parquet conversion)
                files[entry.path] = {"folder": True, "git_tree_id": entry.tree_id}
            elif lfs:
                files[entry.path] = {"size": entry.size, "lfs_sha256": lfs.sha256}
            else:
                files[entry.path] = {"size": entry.size, "git_blob_id": entry.blob_id}
    missing = sorted(set(names) - set(files))
    if missing:
        raise HybridReproError(f"pin {pin.name} ({pin.repo}): at {commit} the hub does not have {missing[:5]}"
                               f"{' ...' if len(missing) > 5 else ''}; pin a commit that has them ({pin.page})")
    return {"key": pin.name, "repo": pin.repo, "canonical_id": info.id, "repo_type": pin.repo_type,
            "branch": pin.branch, "commit": commit, "files": files}


@dataclass
class PinReport:
    """What ``pin`` did: the entries of the lock and one line per key."""

    entries: list[dict[str, Any]]
    lines: list[str]
    changed: dict[tuple[str, ...], str]


def pin_mapping(data: dict[str, Any], api, verify: bool = False, update: bool = False) -> PinReport:
    """Resolve (and with ``verify`` check) every pin of ``data``; the mapping itself is not changed."""
    entries, lines, changed = [], [], {}
    for pin in pins_of(data):
        if pin.value is None or update:
            commit = resolve_commit(api, pin)
            if commit != pin.value:
                changed[pin.key] = commit
            verb = "resolved" if pin.value is None else ("updated" if commit != pin.value else "unchanged")
        else:
            commit, verb = pin.value, "verified" if verify else "kept"
        entry = describe_commit(api, pin, commit) if verify or pin.key in changed or update else None
        if entry:
            entries.append(entry)
            renamed = f" (canonical id {entry['canonical_id']})" if entry["canonical_id"] != pin.repo else ""
            lines.append(f"{pin.name}: {verb} {commit} of {pin.repo}{renamed}, {len(entry['files'])} files")
        else:
            lines.append(f"{pin.name}: {verb} {commit} (not checked: run with --verify)")
    return PinReport(entries, lines, changed)


def _round_trip_yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, quoting and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    yaml.representer.add_representer(type(None), lambda representer, _: representer.represent_scalar(
        "tag:yaml.org,2002:null", "null"))
    return yaml


def rewrite_pins(text: str, changed: dict[tuple[str, ...], str]) -> str:
    """``text`` with each key of ``changed`` set to its value (single-quoted); everything else kept as it was."""
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    yaml = _round_trip_yaml()
    document = yaml.load(text)
    for key, value in changed.items():
        node = document
        for part in key[:-1]:
            node = node[part]
        node[key[-1]] = SingleQuotedScalarString(value)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def lock_path(params_path: Path) -> Path:
    return params_path.with_name(f"{params_path.stem}.lock.json")


def _hub_api():
    from huggingface_hub import HfApi

    return HfApi()


def run_pin(params_path: Path, verify: bool = False, update: bool = False, api=None,
            echo: Callable[[str], None] = print) -> PinReport:
    """Pin ``params_path`` in place and write its lock; return what was done."""
    from ruamel.yaml import YAMLError

    text = params_path.read_text(encoding="utf-8")
    try:
        data = _round_trip_yaml().load(text)
    except YAMLError as exc:
        raise HybridReproError(f"pin: {params_path} is not valid YAML ({exc.__class__.__name__}); "
                               "fix it first") from exc
    if not isinstance(data, dict) or not pins_of(data):
        raise HybridReproError(f"pin: {params_path} holds no hub pin (translate.model_revision, model.revision, "
                               "sources.datasets.*.revision or miracl.*_revision)")
    lock = lock_path(params_path)
    if lock.exists() and read_json(lock).get("written_by") != LOCK_WRITER:
        raise HybridReproError(f"pin: {lock} exists and was not written by `hybrid-repro pin`; move it away")
    report = pin_mapping(data, api or _hub_api(), verify=verify, update=update)
    if report.entries and isinstance(data.get("sources"), dict) and data["sources"].get("pin_lock") != str(lock):
        report.changed[("sources", "pin_lock")] = str(lock)  # the fetch stages check their downloads against it
    if report.changed:
        with atomic_output_file(params_path) as handle:
            handle.write(rewrite_pins(text, report.changed))
    if report.entries:
        write_json(lock, {"written_by": LOCK_WRITER, "params": params_path.name, "pins": report.entries})
    for line in report.lines:
        echo(line)
    echo(f"pin: {len(report.changed)} key(s) written to {params_path}" + (f", lock {lock}" if report.entries else ""))
    return report


def check_against_lock(lock: Path, key: str, commit: str, files: dict[str, Path]) -> None:
    """Raise unless every file of ``files`` (repository path -> local file) has the size and hash ``lock`` records
    for pin ``key`` at ``commit``, and every file the lock records for it is there."""
    entry = next((e for e in read_json(lock)["pins"] if e["key"] == key and e["commit"] == commit), None)
    if entry is None:
        raise HybridReproError(f"{key}: the pin lock {lock} does not record commit {commit}; run `hybrid-repro pin "
                               "PARAMS --verify` after changing a pin")
    recorded = {path: record for path, record in entry["files"].items() if not record.get("folder")}
    missing = sorted(set(recorded) - set(files))
    if missing:
        raise HybridReproError(f"{key}: {missing[:3]} recorded in {lock} were not downloaded; delete the hub cache "
                               "(sources.cache_dir) and fetch again")
    for path, local in files.items():
        record = recorded.get(path)
        if record is None:
            continue  # not a file the lock covers (a folder's content, or a file the pin filtered out)
        got_size = local.stat().st_size
        expected_hash, got_hash = ((record["lfs_sha256"], sha256_file(local)) if "lfs_sha256" in record
                                   else (record["git_blob_id"], sha256_file(local, digest=git_blob_digest(got_size))))
        if got_size != record["size"] or got_hash != expected_hash:
            raise HybridReproError(f"{key}: {path} ({got_size} bytes, {got_hash[:12]}) does not match the pin lock "
                                   f"{lock} ({record['size']} bytes, {expected_hash[:12]}): the download is corrupt "
                                   "or the lock is stale; delete the hub cache (sources.cache_dir) and fetch again, "
                                   "or re-run `hybrid-repro pin PARAMS --verify`")

