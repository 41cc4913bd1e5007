"""Fixtures for testing `modelgate serve` with the real MLflow client: a registry made with the
built CLI (dist/cli.js; `npm run build` first), a scikit-learn model saved by MLflow and registered
in it, and serve running over it on a loopback port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / "dist" / "cli.js"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs the built modelgate CLI; a non-zero exit fails the test with its output."""
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `npm run build` first")
    done = subprocess.run(
        ["node", str(CLI), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"modelgate {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@dataclass
class Registry:
    root: Path
    store: Path
    model_dir: Path


def make_registry(base: Path) -> Registry:
    """A registry with a file store, holding `iris`: version 1 (a LogisticRegression saved by
    mlflow.sklearn.save_model) in Production with the alias `champion`, version 2 (the same
    model) in None."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    base.mkdir(parents=True, exist_ok=True)
    store = base / "store"
    run_cli("init", "reg", "--store", store.as_uri(), cwd=base)
    root = base / "reg"
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    model_dir = base / "iris-model"
    mlflow.sklearn.save_model(model, str(model_dir), input_example=x.head(3))

    run_cli("register", "iris", str(model_dir), "--metric", "accuracy=0.97", "--stage", "Staging", "--description", "iris classifier", cwd=root)
    run_cli("promote", "iris@1", "--to", "Production", cwd=root)
    run_cli("alias", "set", "iris@1", "champion", cwd=root)
    run_cli("register", "iris", str(model_dir), "--metric", "accuracy=0.98", "--run", "id=run-2", cwd=root)
    return Registry(root=root, store=store, model_dir=model_dir)


class Serve:
    """`modelgate serve` over a registry, on a loopback port chosen by the system; `env` adds to the environment it inherits."""

    def __init__(self, registry: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.log_lines: list[str] = []
        self.proc = subprocess.Popen(
            ["node", str(CLI), "serve", "--listen", "127.0.0.1:0", "--refresh", "0.5", *extra],
            cwd=registry,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = self._wait_listening()

    def _wait_listening(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                pytest.fail(f"serve exited {self.proc.wait()} before listening:\n{''.join(self.log_lines)}")
            self.log_lines.append(line)
            try:
                msg = json.loads(line).get("msg", "")
            except json.JSONDecodeError:
                continue
            m = re.search(r"Server listening at (http://127\.0\.0\.1:\d+)", msg)
            if m:
                return m.group(1)
        pytest.fail("serve did not listen within 120 s")

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; returns the exit code and keeps the rest of the log."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=60)
        self.log_lines.append(out)
        return self.proc.returncode

    @property
    def log(self) -> str:
        return "".join(self.log_lines)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("serve-registry"))


@pytest.fixture(scope="session")
def server(registry: Registry):
    s = Serve(registry.root)
    yield s
    s.stop()


@pytest.fixture(scope="session", autouse=True)
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory):
    """The MLflow tracking store of the session, a SQLite file in a temporary folder (MLflow 3
    refuses its file store); the registry URI is set per test, to the serve it talks to."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    yield
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved
