"""The `modelgate` package's writes against a real `modelgate serve --writes commit` over a registry
made with the built CLI: registration by upload (hashed here, only what the store lacks sent,
checked by serve on arrival, scanned, committed), the registry-client calls of USERS-CALLS.md,
promote, set_alias and history; a broken upload and bytes other than the declared ones."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelgate import InvalidRequest, NotFound, Refused, Registry, Unauthorized

from conftest import Serve, git, run_cli

TOKEN = "tok-alice-0123456789abcdefghij"


@dataclass
class Fixture:
    root: Path
    store: Path
    tmp: Path
    serve: Serve
    model_dir: Path

    def reg(self, token: str | None = TOKEN) -> Registry:
        return Registry(self.serve.url, token=token or "")


def sklearn_folder(dest: Path) -> Path:
    """A scikit-learn model saved by MLflow (an MLmodel folder: MLmodel, model.pkl, conda.yaml, …)."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(x, y), str(dest), input_example=x.head(3))
    return dest


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    base = tmp_path_factory.mktemp("sdk-writes")
    store = base / "store"
    run_cli("init", "reg", "--store", store.as_uri(), cwd=base)
    root = base / "reg"
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)
    tokens = base / "tokens"
    tokens.write_text(f"alice {TOKEN}\n")
    # serve's own temporary folder, to see that a broken upload leaves nothing there.
    tmp = base / "serve-tmp"
    tmp.mkdir()
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        s = Serve(root, "--writes", "commit", "--tokens", str(tokens))
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
    yield Fixture(root, store, tmp, s, sklearn_folder(base / "iris-model"))
    s.stop()
    assert TOKEN not in s.log


def objects(store: Path) -> set[str]:
    """Every content object of the file store (registration marks and staging left out)."""
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file() and "/sha256/" in p.relative_to(store).as_posix()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_register_an_mlflow_folder_then_the_same_bytes_again_sends_nothing(fx: Fixture) -> None:
    reg = fx.reg()
    lineage = {"code": {"repository": "github.com/acme/iris", "commit": "0123456789abcdef0123456789abcdef01234567"}, "data": [{"id": "iris-2024"}]}
    first = reg.register("iris", fx.model_dir, metrics={"accuracy": 0.97}, params={"max_iter": 500, "solver": "lbfgs"}, lineage=lineage, stage="Staging")
    assert (first.ref, first.pull_request, first.skipped) == ("iris@1", None, ())
    assert set(first.sent) == {p.relative_to(fx.model_dir).as_posix() for p in fx.model_dir.rglob("*") if p.is_file()}
    assert "MLmodel" in first.sent and first.findings == ()

    v = reg.get("iris@1")
    assert (v.stage, v.metrics, v.params, v.created_by, v.format) == ("Staging", {"accuracy": 0.97}, {"max_iter": 500, "solver": "lbfgs"}, "alice", "mlflow")
    assert v.artifact.sha256 == first.sha256
    assert v.framework is not None and v.framework["name"] == "scikit-learn"
    assert v.signature is not None and v.signature["inputs"]
    assert v.lineage is not None and v.lineage["code"]["commit"] == lineage["code"]["commit"] and v.lineage["data"] == [{"id": "iris-2024"}]
    env_files = {f["path"] for f in v.lineage["environment"]["files"]}
    assert "conda.yaml" in env_files
    # Every declared file is in the store, with the bytes of the folder, as `register` lays them out.
    for f in v.artifact.files or ():
        stored = fx.store / "iris" / "sha256" / first.sha256 / f.path
        assert sha256(stored.read_bytes()) == f.sha256 == sha256((fx.model_dir / f.path).read_bytes())
    assert git("log", "-1", "--format=%an %s", cwd=fx.root).strip() == "alice register iris@1"

    # The same bytes again: serve holds every file at its content key, so none is sent.
    before = objects(fx.store)
    again = reg.register("iris", fx.model_dir, metrics={"accuracy": 0.97})
    assert (again.ref, again.sent, again.sha256) == ("iris@2", (), first.sha256)
    assert set(again.skipped) == set(first.sent)
    assert objects(fx.store) == before

    got = reg.download("iris@2", fx.tmp.parent / "iris-2")
    assert {p.relative_to(got).as_posix(): p.read_bytes() for p in got.rglob("*") if p.is_file()} == {
        p.relative_to(fx.model_dir).as_posix(): p.read_bytes() for p in fx.model_dir.rglob("*") if p.is_file()
    }


def test_the_registry_client_calls_of_the_article(fx: Fixture, tmp_path: Path) -> None:
    """USERS-CALLS.md: `RegistryClient.register_model(model_object, metadata={…, stage: "Staging"})`,
    then `get_model("fraud-detection", stage="Staging")`; `ModelRegistry.register_model(…,
    metadata={framework, training_dataset_id, training_dataset_hash, git_commit_hash,
    hyperparameters, metrics, author, business_owner})` with a semantic version kept as an
    annotation; and `GET /models/{name}/production` → version, metrics, framework, download URL."""
    reg = fx.reg()
    model_file = tmp_path / "model.joblib"
    import joblib
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]), model_file)
    metadata = {
        "model_name": "fraud-detection",
        "version_description": "gradient of the Q3 transactions",
        "performance_metrics": {"auc": 0.96, "precision": 0.91},
        "dataset_version": "txn-2024-q3",
        "dataset_schema_hash": sha256(b"schema v7"),
        "training_code_commit": "89abcdef0123456789abcdef0123456789abcdef",
        "hyperparameters": {"C": 1.0, "penalty": "l2"},
        "stage": "Staging",
        "contact": "fraud-team@acme.example",
    }
    done = reg.register(
        metadata["model_name"],
        model_file,
        description=metadata["version_description"],
        metrics=metadata["performance_metrics"],
        params=metadata["hyperparameters"],
        lineage={
            "code": {"commit": metadata["training_code_commit"]},
            "data": [{"id": metadata["dataset_version"], "sha256": metadata["dataset_schema_hash"]}],
        },
        annotations={"contact": metadata["contact"], "semver": "1.0.2", "business_owner": "risk"},
        framework={"name": "scikit-learn"},
        stage=metadata["stage"],
    )
    assert done.ref == "fraud-detection@1" and done.sent == ("model.joblib",)

    staging = reg.get_model("fraud-detection", stage="Staging")
    assert (staging.version, staging.metrics, staging.params) == (1, {"auc": 0.96, "precision": 0.91}, {"C": 1.0, "penalty": "l2"})
    assert staging.annotations == {"contact": "fraud-team@acme.example", "semver": "1.0.2", "business_owner": "risk"}
    assert staging.lineage is not None and staging.lineage["data"][0]["sha256"] == metadata["dataset_schema_hash"]
    assert staging.description == metadata["version_description"] and staging.format == "joblib"

    # `POST /models/{name}/{version}/transition_stage`, then the production lookup with a download URL.
    assert reg.promote("fraud-detection@staging", to="Production").pull_request is None
    production = reg.get_model("fraud-detection", stage="Production")
    assert (production.version, production.metrics["auc"], production.framework) == (1, 0.96, {"name": "scikit-learn"})
    url = reg.download_url("fraud-detection@production")
    with urllib.request.urlopen(url, timeout=60) as response:
        assert sha256(response.read()) == production.artifact.sha256


def test_promote_set_alias_and_history(fx: Fixture, tmp_path: Path) -> None:
    reg = fx.reg()
    f = tmp_path / "weights.bin"
    f.write_bytes(b"weights " * 1000)
    reg.register("churn", f, stage="Staging", metrics={"auc": 0.9})
    reg.register("churn", f, stage="Staging", metrics={"auc": 0.91})

    moved = reg.promote("churn@1", to="production")
    assert moved.pull_request is None and moved.commit == git("rev-parse", "HEAD", cwd=fx.root).strip()
    assert moved.changes == ("churn@1: Staging → Production",)
    assert reg.get("churn@production").version == 1

    aliased = reg.set_alias("churn@2", "challenger")
    assert aliased.summary == "Set churn@challenger to version 2"
    assert reg.get("churn@challenger").version == 2
    with pytest.raises(Refused) as e:
        reg.set_alias("churn@2", "challenger")
    assert e.value.code == "E_NO_CHANGE" and e.value.status == 409

    # Version 2 to Production archives version 1, in the same commit.
    reg.promote("churn@2", to="Production")
    assert reg.get("churn@1").stage == "Archived"

    history = reg.history("churn")
    moves = [(h.version, h.alias, h.before, h.after, h.author) for h in history]
    assert (1, None, "Staging", "Production", "alice") in moves
    assert (2, "challenger", None, 2, "alice") in moves
    assert (2, None, "Staging", "Production", "alice") in moves
    assert (1, None, "Production", "Archived", "alice") in moves

    with pytest.raises(NotFound):
        reg.history("no-such-model")
    with pytest.raises(NotFound):
        reg.promote("churn@9", to="Production")


def test_writes_need_a_token(fx: Fixture, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 10)
    with pytest.raises(Unauthorized) as e:
        fx.reg(token=None).register("anon", f)
    assert e.value.code == "E_UNAUTHENTICATED"
    with pytest.raises(Unauthorized):
        fx.reg(token=None).promote("iris@1", to="Production")
    with pytest.raises(InvalidRequest):
        fx.reg().register("anon", f, stage="Production")


def test_a_pickle_the_scan_refuses_is_not_registered(fx: Fixture, tmp_path: Path) -> None:
    """The template's policy asks for `scan: pickle` into Staging: a pickle that calls os.system is refused."""

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(Exploit()))
    head = git("rev-parse", "HEAD", cwd=fx.root)
    with pytest.raises(Refused) as e:
        fx.reg().register("evil", bad, stage="Staging")
    assert e.value.code == "E_PICKLE_SCAN" and e.value.status == 422
    assert git("rev-parse", "HEAD", cwd=fx.root) == head
    with pytest.raises(NotFound):
        fx.reg().get("evil@1")


def request(fx: Fixture, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {TOKEN}", **({"Content-Type": "application/json"} if data is not None else {})}
    req = urllib.request.Request(fx.serve.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def put_raw(fx: Fixture, upload: str, path: str, declared_length: int, sent: bytes) -> tuple[int, bytes] | None:
    """PUTs `sent` under a Content-Length of `declared_length`; a shorter body is cut off by closing
    the connection, as a killed client does. Returns the answer, or None when there was none."""
    url = urllib.parse.urlsplit(fx.serve.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("PUT", f"/api/v1/uploads/{upload}?{urllib.parse.urlencode({'path': path})}")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(declared_length))
    conn.endheaders()
    conn.send(sent)
    if len(sent) < declared_length:
        conn.sock.close()
        return None
    r = conn.getresponse()
    out = (r.status, r.read())
    conn.close()
    return out


def assert_no_files_left(folder: Path) -> None:
    """serve removes a broken upload's partial file once it sees the connection end, which may be
    just after the client's next request is answered: waited for, with a generous deadline."""
    deadline = time.monotonic() + 120
    while (left := [p for p in folder.rglob("*") if p.is_file()]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []


def test_a_broken_upload_stores_nothing_and_the_next_one_sends_only_what_is_missing(fx: Fixture, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    big = os.urandom(3 << 20)
    (folder / "weights" / "big.bin").write_bytes(big)
    (folder / "config.json").write_text('{"layers": 3}')
    files = [
        {"path": "config.json", "sha256": sha256(b'{"layers": 3}'), "size": 13},
        {"path": "weights/big.bin", "sha256": sha256(big), "size": len(big)},
    ]
    status, begun = request(fx, "POST", "/api/v1/models/broken/uploads", {"directory": True, "files": files})
    assert status == 201 and sorted(begun["missing"]) == ["config.json", "weights/big.bin"]  # type: ignore[arg-type]
    upload = str(begun["upload"])
    before = objects(fx.store)

    # The config arrives; the weights' connection dies halfway (a killed client).
    assert put_raw(fx, upload, "config.json", 13, b'{"layers": 3}') is not None
    assert put_raw(fx, upload, "weights/big.bin", len(big), big[: len(big) // 2]) is None
    status, refused = request(fx, "POST", f"/api/v1/uploads/{upload}/register", {})
    assert status == 409 and refused["error"]["code"] == "E_UPLOAD_INCOMPLETE"  # type: ignore[index]
    # Only the whole file is in the store; nothing of the broken one, and no temporary file at serve.
    added = objects(fx.store) - before
    assert added == {f"broken/sha256/{begun['sha256']}/config.json"}
    assert_no_files_left(fx.tmp)
    with pytest.raises(NotFound):
        fx.reg().get("broken@1")

    # The client starts again: the config is held, so only the weights are sent.
    done = fx.reg().register("broken", folder)
    assert (done.ref, done.sent, done.skipped, done.sha256) == ("broken@1", ("weights/big.bin",), ("config.json",), begun["sha256"])
    status, _ = request(fx, "DELETE", f"/api/v1/uploads/{upload}")
    assert status == 204


def test_bytes_other_than_the_declared_ones_are_refused_and_not_stored(fx: Fixture) -> None:
    good, bad = b"the model weights", b"the other weights"
    status, begun = request(
        fx, "POST", "/api/v1/models/tampered/uploads", {"directory": False, "files": [{"path": "m.bin", "sha256": sha256(good), "size": len(good)}]}
    )
    assert status == 201
    answer = put_raw(fx, str(begun["upload"]), "m.bin", len(bad), bad)
    assert answer is not None and answer[0] == 422 and json.loads(answer[1])["error"]["code"] == "E_UPLOAD_DIGEST"
    assert not (fx.store / "tampered" / "sha256" / sha256(good) / "m.bin").exists()
    assert_no_files_left(fx.tmp)
    # More bytes than declared end the read at once, with the same refusal.
    answer = put_raw(fx, str(begun["upload"]), "m.bin", len(good) + 5, good + b"extra")
    assert answer is not None and answer[0] == 422
    status, refused = request(fx, "POST", f"/api/v1/uploads/{begun['upload']}/register", {})
    assert status == 409 and refused["error"]["code"] == "E_UPLOAD_INCOMPLETE"  # type: ignore[index]
    # The right bytes go in.
    answer = put_raw(fx, str(begun["upload"]), "m.bin", len(good), good)
    assert answer is not None and answer[0] == 200
    status, done = request(fx, "POST", f"/api/v1/uploads/{begun['upload']}/register", {})
    assert status == 201 and done["ref"] == "tampered@1"
    assert sha256((fx.store / "tampered" / "sha256" / sha256(good) / "m.bin").read_bytes()) == sha256(good)
    # The upload is over: it cannot be used again, by anyone.
    status, gone = request(fx, "POST", f"/api/v1/uploads/{begun['upload']}/register", {})
    assert status == 404 and gone["error"]["code"] == "E_UPLOAD_UNKNOWN"  # type: ignore[index]


def test_what_an_abandoned_upload_stored_is_removed_by_gc(fx: Fixture) -> None:
    data = b"abandoned bytes"
    status, begun = request(
        fx, "POST", "/api/v1/models/gone/uploads", {"directory": False, "files": [{"path": "g.bin", "sha256": sha256(data), "size": len(data)}]}
    )
    assert status == 201
    assert put_raw(fx, str(begun["upload"]), "g.bin", len(data), data) is not None
    key = fx.store / "gone" / "sha256" / sha256(data) / "g.bin"
    assert key.exists()
    status, _ = request(fx, "DELETE", f"/api/v1/uploads/{begun['upload']}")
    assert status == 204
    run_cli("gc", "--older-than", "0s", cwd=fx.root)
    assert not key.exists()


def test_a_killed_register_leaves_no_version_and_nothing_gc_cannot_remove(fx: Fixture, tmp_path: Path) -> None:
    """`Registry.register` in a process killed (SIGKILL) while its bytes stream to serve."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1 << 20))  # 256 MiB: still streaming when the kill comes
    script = f"from modelgate import Registry\nRegistry({fx.serve.url!r}, token={TOKEN!r}).register('killed', {str(big)!r})\n"
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 300
        # serve's temporary file of the upload appears once bytes arrive.
        while not [p for p in fx.tmp.rglob("*") if p.is_file()] and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the upload finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert_no_files_left(fx.tmp)
    with pytest.raises(NotFound):
        fx.reg().get("killed@1")
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert not (fx.store / "killed" / "sha256" / digest / "big.bin").exists()
    # The registration mark is all that is left, and gc takes it once it is old enough.
    marks = fx.store / ".modelgate" / "registrations" / "killed"
    assert [p.relative_to(marks).parts[0] for p in marks.rglob("*") if p.is_file()] == [digest]
    run_cli("gc", "--older-than", "0s", cwd=fx.root)
    assert [p for p in marks.rglob("*") if p.is_file()] == []
