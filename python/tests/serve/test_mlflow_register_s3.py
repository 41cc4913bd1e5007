"""`mlflow.register_model("s3://…", name)` against `modelgate serve` started without a tracking
server, on both real S3 servers of the test set-up (OpenStack Swift's s3api and Ceph RGW, on
loopback): a scikit-learn model saved by MLflow is put into a bucket with MLflow's own S3 artifact
repository, serve reads it with MLflow's S3 settings (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION, and MLFLOW_S3_ENDPOINT_URL or boto3's AWS_ENDPOINT_URL), copies it by digest into the
registry's store, scans it and commits the version; the MLflow client then loads it from serve.
A source that is not there, credentials S3 refuses, an endpoint that does not answer, a pickle the
scan refuses and a path on serve's machine are MLflow errors that leave nothing behind: no commit,
no object in the store, no temporary file."""

from __future__ import annotations

import json
import os
import pickle
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import Serve, git, run_cli

TOKEN = "tok-maria-0123456789abcdef"


@dataclass(frozen=True)
class S3Server:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    # How serve is told the endpoint: MLflow's own variable, or boto3's.
    endpoint_variable: str

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, region_name=self.region)

    def env(self, **changes: str) -> dict[str, str]:
        """serve's environment for this server, as an MLflow user sets it (no other endpoint variable set)."""
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "MLFLOW_S3_ENDPOINT_URL": "",
            "AWS_ENDPOINT_URL_S3": "",
            "AWS_ENDPOINT_URL": "",
        }
        env[self.endpoint_variable] = self.endpoint
        return {**env, **changes}


def s3_server(name: str) -> S3Server:
    """The endpoints and keys test/helpers/s3.ts reads (scripts/s3-server.sh, scripts/ceph-rgw.sh)."""
    env = os.environ
    if name == "rgw":
        return S3Server(
            name,
            env.get("MODELGATE_RGW_ENDPOINT") or f"http://127.0.0.1:{env.get('MODELGATE_RGW_PORT', '8480')}",
            env.get("MODELGATE_RGW_ACCESS_KEY_ID") or "modelgate-rgw-access-key",
            env.get("MODELGATE_RGW_SECRET_ACCESS_KEY") or "modelgate-rgw-secret-key",
            env.get("MODELGATE_RGW_REGION") or "us-east-1",
            "AWS_ENDPOINT_URL",
        )
    return S3Server(
        name,
        env.get("MODELGATE_S3_ENDPOINT") or f"http://127.0.0.1:{env.get('MODELGATE_S3_PORT', '8380')}",
        env.get("AWS_ACCESS_KEY_ID") or "modelgate:admin",
        env.get("AWS_SECRET_ACCESS_KEY") or "modelgate-secret-key",
        env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL",
    )


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Fixture:
    s3: S3Server
    bucket: str
    root: Path
    # The registry's store: a folder (Swift's run), or a prefix of the bucket (RGW's run).
    store: Path | str
    tmp: Path
    serve: Serve
    model: LogisticRegression

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/models/iris"

    def client(self) -> MlflowClient:
        return MlflowClient(registry_uri=self.serve.url)

    @property
    def store_uri(self) -> str:
        return self.store.as_uri() if isinstance(self.store, Path) else self.store

    def stored(self) -> set[str]:
        """Every object of the registry's store: content, registration marks and staging alike."""
        if isinstance(self.store, Path):
            return files(self.store)
        prefix = "registry/"
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", [])}


def files(folder: Path) -> set[str]:
    """Every file under `folder` (the store: content, registration marks and staging alike)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=["swift", "rgw"])
def fx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    s3 = s3_server(request.param)
    base = tmp_path_factory.mktemp(f"s3-source-{s3.name}")

    # The model, saved by MLflow and put into a new bucket by MLflow's own S3 artifact repository.
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(C=0.5, max_iter=500).fit(x, y)
    model_dir = base / "iris-model"
    mlflow.sklearn.save_model(model, str(model_dir), input_example=x.head(3))
    bucket = f"mlflow-{s3.name}-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    with environment({**s3.env(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}):
        # boto3's default session keeps the credentials it first found: the other server's, in this process.
        boto3.setup_default_session()
        S3ArtifactRepository(f"s3://{bucket}/models/iris").log_artifacts(str(model_dir))
        evil = base / "evil"
        evil.mkdir()
        (evil / "model.pkl").write_bytes(pickle.dumps(Exploit()))
        S3ArtifactRepository(f"s3://{bucket}/models/evil").log_artifacts(str(evil))

    # A registry whose policy scans new versions (the template scans from Staging on); its store is
    # a folder on Swift's run, and the same bucket on RGW's (the S3 settings of modelgate.yaml).
    store: Path | str = base / "store" if s3.name == "swift" else f"s3://{bucket}/registry"
    run_cli("init", "reg", "--store", store.as_uri() if isinstance(store, Path) else store, cwd=base)
    root = base / "reg"
    if isinstance(store, str):
        config = root / "modelgate.yaml"
        text = config.read_text()
        uri_line = f"  uri: {store}\n"
        assert uri_line in text
        config.write_text(text.replace(uri_line, f"{uri_line}  endpoint: {s3.endpoint}\n  region: {s3.region}\n  forcePathStyle: true\n"))
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)
    policy = root / "policies" / "promotion.yaml"
    text = policy.read_text()
    register_rule = "  - name: register\n    to: None\n    from: [None]\n"
    assert register_rule in text
    policy.write_text(text.replace(register_rule, register_rule + "    scan: pickle\n"))
    git("commit", "-qam", "scan new versions", cwd=root)
    tokens = base / "tokens"
    tokens.write_text(f"maria {TOKEN}\n")
    tmp = base / "serve-tmp"
    tmp.mkdir()
    # No --mlflow-tracking-uri: an s3:// source needs none (MLFLOW_TRACKING_URI is the session's SQLite file, not a server).
    s = Serve(root, "--writes", "commit", "--tokens", str(tokens), env={**s3.env(), "TMPDIR": str(tmp)})
    saved_token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    try:
        yield Fixture(s3, bucket, root, store, tmp, s, model)
    finally:
        if saved_token is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = saved_token
        s.stop()
        assert TOKEN not in s.log and s3.secret_key not in s.log


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned",))


def test_register_model_from_s3_without_a_tracking_server(fx: Fixture) -> None:
    mlflow.set_registry_uri(fx.serve.url)
    mv = mlflow.register_model(fx.source, "iris-s3")
    assert (mv.name, mv.version, mv.current_stage) == ("iris-s3", "1", "None")

    manifest = json.loads(run_cli("show", "iris-s3@1", "--json", cwd=fx.root, env=fx.s3.env()))
    assert manifest["createdBy"] == "maria"
    assert manifest["format"] == "mlflow"
    assert manifest["framework"]["name"] == "scikit-learn"
    assert [i["name"] for i in manifest["signature"]["inputs"]] == list(load_iris(as_frame=True).data.columns)
    assert manifest["annotations"]["mlflow/source"] == fx.source
    assert manifest["artifact"]["uri"].startswith(fx.store_uri + "/iris-s3/sha256/")
    assert {f["path"] for f in manifest["artifact"]["files"]} >= {"MLmodel", "conda.yaml", "requirements.txt"}
    assert "register iris-s3@1" in git("log", "-1", "--format=%s", cwd=fx.root)
    run_cli("validate", cwd=fx.root, env=fx.s3.env())
    # Every byte in the store has the digest the manifest records.
    run_cli("verify", "iris-s3@1", "--full", cwd=fx.root, env=fx.s3.env())

    x = load_iris(as_frame=True).data.iloc[[0, 60, 120]]
    loaded = mlflow.pyfunc.load_model("models:/iris-s3/1")
    assert list(loaded.predict(x)) == list(fx.model.predict(x))

    # The same source again is the same bytes: a second version, nothing new in the store.
    before = fx.stored()
    again = fx.client().create_model_version("iris-s3", fx.source)
    assert again.version == "2"
    assert json.loads(run_cli("show", "iris-s3@2", "--json", cwd=fx.root, env=fx.s3.env()))["artifact"]["sha256"] == manifest["artifact"]["sha256"]
    assert {f for f in fx.stored() - before if "/sha256/" in f} == set()
    assert files(fx.tmp) == set()


@pytest.mark.parametrize(
    ("where", "error_code"),
    [
        ("s3://{bucket}/models/no-such-model", "RESOURCE_DOES_NOT_EXIST"),
        ("s3://no-such-bucket-{suffix}/models/iris", "RESOURCE_DOES_NOT_EXIST"),
        ("s3://{bucket}/models/evil", "INVALID_PARAMETER_VALUE"),
        ("s3://{bucket}/models/iris/../evil", "INVALID_PARAMETER_VALUE"),
        ("file:///etc", "INVALID_PARAMETER_VALUE"),
        ("/etc", "INVALID_PARAMETER_VALUE"),
    ],
    ids=["missing-key", "missing-bucket", "scan-refuses", "relative-path", "file-url", "local-path"],
)
def test_a_source_serve_cannot_register_leaves_nothing_behind(fx: Fixture, where: str, error_code: str) -> None:
    source = where.format(bucket=fx.bucket, suffix=uuid.uuid4().hex[:12])
    head = git("rev-parse", "HEAD", cwd=fx.root)
    before = fx.stored()
    with pytest.raises(MlflowException) as e:
        fx.client().create_model_version("refused", source)
    assert e.value.error_code == error_code
    if "evil" in source and ".." not in source:
        assert "E_PICKLE_SCAN" in e.value.message
    assert git("rev-parse", "HEAD", cwd=fx.root) == head
    assert git("status", "--porcelain", cwd=fx.root) == ""
    assert fx.stored() == before
    assert files(fx.tmp) == set()


@pytest.mark.parametrize("failure", ["wrong-secret", "no-endpoint"])
def test_s3_that_refuses_or_does_not_answer_leaves_nothing_behind(fx: Fixture, failure: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"maria {TOKEN}\n")
    changes = (
        {"AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}
        if failure == "wrong-secret"
        else {fx.s3.endpoint_variable: f"http://127.0.0.1:{free_port()}", "MODELGATE_IO_TIMEOUT": "10"}
    )
    s = Serve(fx.root, "--writes", "commit", "--tokens", str(tokens), env={**fx.s3.env(**changes), "TMPDIR": str(tmp_path)})
    try:
        head = git("rev-parse", "HEAD", cwd=fx.root)
        before = fx.stored()
        with pytest.raises(MlflowException) as e:
            MlflowClient(registry_uri=s.url).create_model_version("refused", fx.source)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert ("E_S3_CREDENTIALS" if failure == "wrong-secret" else "E_S3_UNREACHABLE") in e.value.message
        assert git("rev-parse", "HEAD", cwd=fx.root) == head
        assert fx.stored() == before
        assert [p for p in tmp_path.rglob("*") if p.is_file() and p != tokens] == []
    finally:
        s.stop()
    assert "not-the-secret-key" not in s.log
