"""The real MLflow client (MLflow 3.x, pinned in python/requirements-test.txt) against
`modelgate serve`: registry reads and model loading through serve's artifact API."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris

from conftest import Registry, Serve, make_registry


def client(server: Serve) -> MlflowClient:
    mlflow.set_registry_uri(server.url)
    return MlflowClient(registry_uri=server.url)


def iris_rows() -> pd.DataFrame:
    x, _ = load_iris(return_X_y=True, as_frame=True)
    return x.iloc[[0, 60, 120]]


def test_get_registered_model_and_versions(server: Serve) -> None:
    c = client(server)
    m = c.get_registered_model("iris")
    assert m.name == "iris"
    assert {v.current_stage: v.version for v in m.latest_versions} == {"Production": "1", "None": "2"}

    v1 = c.get_model_version("iris", "1")
    assert (v1.version, v1.current_stage, v1.description) == ("1", "Production", "iris classifier")
    assert v1.user_id == "Maria Test"
    tags = v1.tags
    assert len(tags["modelgate.sha256"]) == 64
    assert tags["modelgate.metrics.accuracy"] == "0.97"
    assert v1.source == f"{server.url}/api/2.0/mlflow-artifacts/artifacts/iris/1"

    v2 = c.get_model_version("iris", 2)
    assert (v2.current_stage, v2.run_id) == ("None", "run-2")


def test_search(server: Serve) -> None:
    c = client(server)
    assert [m.name for m in c.search_registered_models()] == ["iris"]
    assert [m.name for m in c.search_registered_models(filter_string="name LIKE 'ir%'")] == ["iris"]
    assert c.search_registered_models(filter_string="name = 'fraud'") == []

    versions = c.search_model_versions("name = 'iris'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert [v.version for v in c.search_model_versions("run_id = 'run-2'")] == ["2"]
    assert [v.version for v in c.search_model_versions("tags.`modelgate.metrics.accuracy` = '0.97'")] == ["1"]


def test_latest_versions_per_stage(server: Serve) -> None:
    c = client(server)
    assert [v.version for v in c.get_latest_versions("iris", stages=["Production"])] == ["1"]
    assert [v.version for v in c.get_latest_versions("iris", stages=["production"])] == ["1"]
    assert c.get_latest_versions("iris", stages=["Staging"]) == []


def test_mlflow_errors(server: Serve) -> None:
    c = client(server)
    with pytest.raises(MlflowException) as e:
        c.get_registered_model("no-such-model")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        c.get_model_version("iris", "9")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        c.get_model_version_by_alias("iris", "no-such-alias")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        c.search_registered_models(filter_string="name ~ 'x'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_download_uri_and_every_answer_names_its_commit(server: Serve, registry: Registry) -> None:
    c = client(server)
    assert c.get_model_version_download_uri("iris", "1") == f"{server.url}/api/2.0/mlflow-artifacts/artifacts/iris/1"
    head = os.popen(f"git -C {registry.root} rev-parse HEAD").read().strip()
    r = requests.get(f"{server.url}/api/2.0/mlflow/registered-models/get", params={"name": "iris"}, timeout=30)
    assert r.headers["X-Modelgate-Commit"] == head


def test_load_model_by_version_and_stage_and_predict(server: Serve, registry: Registry) -> None:
    client(server)
    rows = iris_rows()
    for uri in ("models:/iris/1", "models:/iris/Production"):
        model = mlflow.pyfunc.load_model(uri)
        assert list(model.predict(rows)) == [0, 1, 2]


def test_aliases(server: Serve) -> None:
    c = client(server)
    v = c.get_model_version_by_alias("iris", "champion")
    assert (v.version, v.current_stage, v.aliases) == ("1", "Production", ["champion"])
    assert c.get_registered_model("iris").aliases == {"champion": "1"}
    assert c.get_model_version("iris", "2").aliases == []
    model = mlflow.pyfunc.load_model("models:/iris@champion")
    assert list(model.predict(iris_rows())) == [0, 1, 2]


def test_downloaded_files_are_the_registered_bytes(server: Serve, registry: Registry, tmp_path: Path) -> None:
    client(server)
    out = mlflow.artifacts.download_artifacts(artifact_uri="models:/iris/1", dst_path=str(tmp_path / "dl"))
    for path in registry.model_dir.rglob("*"):
        if path.is_file():
            got = Path(out) / path.relative_to(registry.model_dir)
            assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_tampered_object_fails_the_download_and_leaves_no_loadable_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow's client retries a broken download with a growing back-off: once is enough here.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    reg = make_registry(tmp_path / "tampered")
    # The serialized model's object in the store (model.skops or model.pkl): same size, other bytes.
    # Not its seal under .modelgate/seals/, which bears the same name and only spares a re-hash.
    victim = next(p for p in reg.store.rglob("model.*") if p.is_file() and ".modelgate" not in p.relative_to(reg.store).parts)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(victim, stat.S_IWUSR | stat.S_IRUSR)
    victim.write_bytes(bytes(data))
    s = Serve(reg.root)
    try:
        mlflow.set_registry_uri(s.url)
        dst = tmp_path / "dl"
        dst.mkdir()
        with pytest.raises(Exception):
            mlflow.pyfunc.load_model("models:/iris/1", dst_path=str(dst))
        # Whatever the client kept, the model file is not there whole.
        for got in dst.rglob(victim.name):
            assert got.read_bytes() != bytes(data)
        # Asked for directly, the file ends short of its size: never complete and unverified.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{s.url}/api/2.0/mlflow-artifacts/artifacts/iris/1/{victim.name}", timeout=30).raise_for_status()
        # An untampered file of the same version still downloads.
        r = requests.get(f"{s.url}/api/2.0/mlflow-artifacts/artifacts/iris/1/MLmodel", timeout=30)
        assert r.status_code == 200
    finally:
        s.stop()
    assert "sha256 check" in s.log


def test_writes_land_as_commits_with_writes_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = make_registry(tmp_path / "writes")
    tokens = tmp_path / "tokens"
    tokens.write_text("maria tok-maria-0123456789abcdef\n")
    s = Serve(reg.root, "--writes", "commit", "--tokens", str(tokens))
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-maria-0123456789abcdef")
        c = client(s)
        c.set_registered_model_alias("iris", "challenger", "2")
        assert c.get_model_version_by_alias("iris", "challenger").version == "2"
        assert os.popen(f"git -C {reg.root} log -1 --format=%an:%s").read().strip() == "maria:Set iris@challenger to version 2"

        # Version 1 (Production) carries `champion`: archiving it is refused until the alias goes.
        with pytest.raises(MlflowException) as e:
            c.transition_model_version_stage("iris", "2", "Production", archive_existing_versions=True)
        assert e.value.error_code == "INVALID_STATE"
        c.delete_registered_model_alias("iris", "champion")
        moved = c.transition_model_version_stage("iris", "2", "Production", archive_existing_versions=True)
        assert (moved.version, moved.current_stage) == ("2", "Production")
        assert c.get_model_version("iris", "1").current_stage == "Archived"
        assert [v.version for v in c.get_latest_versions("iris", stages=["Production"])] == ["2"]

        c.set_model_version_tag("iris", "2", "reviewed-by", "risk-team")
        assert c.get_model_version("iris", "2").tags["reviewed-by"] == "risk-team"

        with pytest.raises(MlflowException) as e:
            c.delete_model_version("iris", "1")
        assert e.value.error_code == "PERMISSION_DENIED"
    finally:
        s.stop()
    assert "tok-maria-0123456789abcdef" not in s.log


def test_description_edits_land_as_governed_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = make_registry(tmp_path / "describe")
    tokens = tmp_path / "tokens"
    tokens.write_text("maria tok-maria-0123456789abcdef\n")
    s = Serve(reg.root, "--writes", "commit", "--tokens", str(tokens))
    try:
        c = client(s)
        # Without a token the edit is refused: every write has an authenticated caller.
        with pytest.raises(MlflowException) as e:
            c.update_model_version("iris", "2", description="anonymous")
        assert e.value.error_code == "UNAUTHENTICATED"

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-maria-0123456789abcdef")
        c = client(s)
        updated = c.update_model_version("iris", "2", description="retrained on the 2026 data")
        assert updated.description == "retrained on the 2026 data"
        assert c.get_model_version("iris", "2").description == "retrained on the 2026 data"
        assert "description" not in c.get_model_version("iris", "2").tags
        assert c.get_model_version("iris", "1").description == "iris classifier"
        assert os.popen(f"git -C {reg.root} log -1 --format=%an:%s").read().strip() == "maria:Annotate iris@2: description=retrained on the 2026 data"
        manifest = (reg.root / "models" / "iris" / "versions" / "2.yaml").read_text()
        assert "description: retrained on the 2026 data" in manifest

        model = c.update_registered_model("iris", description="Iris species classifier")
        assert model.description == "Iris species classifier"
        assert c.get_registered_model("iris").description == "Iris species classifier"
        assert os.popen(f"git -C {reg.root} log -1 --format=%an:%s").read().strip() == "maria:Describe iris"
        assert "description: Iris species classifier" in (reg.root / "models" / "iris" / "model.yaml").read_text()

        with pytest.raises(MlflowException) as e:
            c.update_registered_model("nope", description="no such model")
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    finally:
        s.stop()
