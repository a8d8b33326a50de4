"""A real hub-compatible server on 127.0.0.1 for the tests: olah, serving git repositories the tests build.

olah (a maintained, self-hosted Hugging Face mirror on the package index) serves local git repositories in
offline mode with the hub's API: ``/api/<type>s/<repo>/revision/<commit>``, ``/refs`` (branches and
``refs/convert/*``), ``/tree``, ``/paths-info`` and ``/resolve`` downloads, which is what ``huggingface_hub``
and ``datasets`` ask for. Nothing is patched between the package and the server: the real clients talk HTTP
to it through ``HF_ENDPOINT`` (or ``HfApi(endpoint=...)``).

olah is a test dependency only, installed apart from the project (``make install-test-hub`` makes
``.venv-hub``); ``HYBRID_REPRO_OLAH`` may name another ``olah-cli``. Tests that need it skip with that reason
when it is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def olah_cli() -> Path | None:
    configured = os.environ.get("HYBRID_REPRO_OLAH")
    path = Path(configured) if configured else REPO / ".venv-hub" / "bin" / "olah-cli"
    return path if path.is_file() else None


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "fixture@example.org",
           "GIT_COMMITTER_NAME": "fixture", "GIT_COMMITTER_EMAIL": "fixture@example.org",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class FixtureRepo:
    """One git repository served as ``<repo_type>s/<repo>``; ``commit`` is the head of ``main``."""

    path: Path
    repo: str
    repo_type: str
    commit: str

    def commit_files(self, files: dict[str, bytes], message: str) -> str:
        for name, payload in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
        _git(self.path, "add", "-A")
        _git(self.path, "commit", "-q", "-m", message)
        self.commit = _git(self.path, "rev-parse", "HEAD")
        return self.commit

    def add_parquet_conversion(self, files: dict[str, bytes]) -> str:
        """An orphan commit holding ``files`` as ``refs/convert/parquet`` (configs as folders); ``main`` stays."""
        _git(self.path, "checkout", "-q", "--orphan", "parquet-conversion")
        _git(self.path, "rm", "-q", "-rf", ".")
        for name, payload in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
        _git(self.path, "add", "-A")
        _git(self.path, "commit", "-q", "-m", "parquet conversion")
        converted = _git(self.path, "rev-parse", "HEAD")
        _git(self.path, "update-ref", "refs/convert/parquet", converted)
        _git(self.path, "checkout", "-q", "main")
        _git(self.path, "branch", "-q", "-D", "parquet-conversion")
        return converted


class HubServer:
    """olah on a free loopback port, serving the repositories under ``mirrors``."""

    def __init__(self, root: Path):
        self.root = root
        self.mirrors = root / "mirrors"
        self.mirrors.mkdir(parents=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def add_repo(self, repo: str, repo_type: str, files: dict[str, bytes]) -> FixtureRepo:
        path = self.mirrors / f"{repo_type}s" / repo
        path.mkdir(parents=True)
        _git(path, "init", "-q", "-b", "main")
        fixture = FixtureRepo(path, repo, repo_type, "")
        fixture.commit_files({"README.md": f"# {repo}\n".encode(), **files}, "initial")
        return fixture

    def start(self) -> "HubServer":
        cli = olah_cli()
        if cli is None:
            pytest.skip("the hub-compatible test server olah is not installed: run `make install-test-hub` "
                        "(or set HYBRID_REPRO_OLAH to an olah-cli)")
        config = self.root / "olah.toml"
        config.write_text(
            f'[basic]\nhost = "127.0.0.1"\nport = {self.port}\nmirror-scheme = "http"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'repos-path = "{self.root / "cache"}"\nmirrors-path = ["{self.mirrors}"]\n'
            f'log-path = "{self.root / "logs"}"\n[accessibility]\noffline = true\n', encoding="utf-8")
        self.log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen([str(cli), "-c", str(config)], cwd=self.root, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("olah did not answer within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process:
            self.log.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
