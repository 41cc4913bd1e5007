"""`mlflow.register_model("runs:/…", name)` against `modelgate serve`: the run is logged to a real
MLflow tracking server (`mlflow server`, SQLite backend, local artifact root, loopback) and the
registration lands in modelgate as a governed version, its bytes copied by digest through the
tracking server's artifact proxy, with the signature, run, metrics and params."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import Serve, git, run_cli

TOKEN = "tok-maria-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory):
    """A real MLflow tracking server on loopback, with its SQLite store and artifact root in a temporary folder."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{base / 'mlflow.db'}",
            "--artifacts-destination",
            str(base / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if requests.get(f"{url}/health", timeout=5).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mlflow server did not start (exit {proc.poll()})")
        time.sleep(1)
    yield url
    # The server runs uvicorn and job workers in its own process group: all of it is stopped.
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_register_model_from_a_run_becomes_a_governed_version(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    run_cli("init", "reg", "--store", store.as_uri(), cwd=tmp_path)
    root = tmp_path / "reg"
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"maria {TOKEN}\n")
    s = Serve(root, "--writes", "commit", "--tokens", str(tokens), "--mlflow-tracking-uri", tracking)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(s.url)
        x, y = load_iris(return_X_y=True, as_frame=True)
        mlflow.set_experiment("register-through-serve")
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.7, max_iter=300).fit(x, y)
            mlflow.log_params({"C": 0.7, "max_iter": 300})
            mlflow.log_metric("accuracy", model.score(x, y))
            mlflow.sklearn.log_model(model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"])

        mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-clf")
        assert (mv.name, mv.version, mv.run_id, mv.current_stage) == ("iris-clf", "1", run.info.run_id, "None")

        # A governed version: committed to the registry, its manifest carrying what MLflow knew.
        manifest = json.loads(run_cli("show", "iris-clf@1", "--json", cwd=root))
        assert manifest["createdBy"] == "maria"
        assert manifest["format"] == "mlflow"
        assert manifest["framework"]["name"] == "scikit-learn"
        assert [i["name"] for i in manifest["signature"]["inputs"]] == list(x.columns)
        assert manifest["lineage"]["run"]["id"] == run.info.run_id
        assert manifest["metrics"]["accuracy"] == pytest.approx(model.score(x, y))
        assert manifest["parameters"] == {"C": "0.7", "max_iter": "300"}
        assert manifest["artifact"]["uri"].startswith(store.as_uri())
        assert "register iris-clf@1" in git("log", "-1", "--format=%s", cwd=root)
        run_cli("validate", cwd=root)
        run_cli("verify", "iris-clf@1", "--full", cwd=root)

        # The MLflow client sees it, and loads the copied bytes from serve.
        c = MlflowClient(tracking_uri=tracking, registry_uri=s.url)
        assert c.get_model_version("iris-clf", "1").run_id == run.info.run_id
        loaded = mlflow.pyfunc.load_model("models:/iris-clf/1")
        assert list(loaded.predict(x.iloc[[0, 60, 120]])) == list(model.predict(x.iloc[[0, 60, 120]]))

        # A source the tracking server does not have is MLflow's INVALID_PARAMETER_VALUE, and nothing is written.
        head = git("rev-parse", "HEAD", cwd=root)
        with pytest.raises(MlflowException) as e:
            c.create_model_version("iris-clf", "runs:/0123456789abcdef0123456789abcdef/model")
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert git("rev-parse", "HEAD", cwd=root) == head
    finally:
        s.stop()
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
