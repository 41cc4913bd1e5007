"""The `modelgate` Python package (python/src/modelgate) against `modelgate serve` over a registry
made with the built CLI: reads, search, typed errors, tokens and verified downloads."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import stat
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

import pytest

import modelgate
from modelgate import DownloadError, IntegrityError, InvalidRequest, NotFound, RateLimited, Registry, Unauthorized, Unreachable

from conftest import Serve, git, run_cli

TOKEN = "s3cret-token-of-alice-0123456789"


@dataclass
class Fixture:
    root: Path
    store: Path
    v1: Path
    v2: Path
    single: Path


def make_fixture(base: Path) -> Fixture:
    """`fraud` 1 (a folder, Production) and 2 (a folder, Staging, dataset txn-q3); `tiny` 1 (one file)."""
    base.mkdir(parents=True, exist_ok=True)
    store = base / "store"
    run_cli("init", "reg", "--store", store.as_uri(), cwd=base)
    root = base / "reg"
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)
    v1, v2 = base / "fraud-v1", base / "fraud-v2"
    for folder, seed in ((v1, b"one"), (v2, b"two")):
        (folder / "sub").mkdir(parents=True)
        (folder / "model.bin").write_bytes(hashlib.sha256(seed).digest() * 40_000)  # 1.28 MB: more than one chunk
        (folder / "sub" / "config.json").write_text(json.dumps({"seed": seed.decode()}))
    single = base / "weights.bin"
    single.write_bytes(b"\x00\x01tiny weights" * 100)
    run_cli(
        "register",
        "fraud",
        str(v1),
        "--format",
        "other",
        "--metric",
        "auc=0.91",
        "--param",
        "depth=6",
        "--stage",
        "Staging",
        "--description",
        "first fraud model",
        cwd=root,
    )
    run_cli("promote", "fraud@1", "--to", "Production", cwd=root)
    run_cli(
        "register", "fraud", str(v2), "--format", "other", "--metric", "auc=0.95", "--stage", "Staging", "--dataset", "id=txn-q3,uri=s3://data/txn-q3", cwd=root
    )
    run_cli("register", "tiny", str(single), "--format", "other", cwd=root)
    return Fixture(root, store, v1, v2, single)


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return make_fixture(tmp_path_factory.mktemp("sdk-registry"))


@pytest.fixture(scope="module")
def reg(fx: Fixture):
    s = Serve(fx.root)
    yield Registry(s.url)
    s.stop()


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with its sha256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_models_and_model(reg: Registry) -> None:
    assert [(m.name, m.version_count, m.latest) for m in reg.models()] == [("fraud", 2, 2), ("tiny", 1, 1)]
    m = reg.model("fraud")
    assert (m.name, m.versions, m.stages, m.retired, m.owners) == ("fraud", (1, 2), {"Production": 1, "Staging": 2}, False, ())


def test_get_by_number_stage_and_latest(reg: Registry, fx: Fixture) -> None:
    v1 = reg.get("fraud@1")
    assert (v1.ref, v1.stage, v1.description, v1.created_by) == ("fraud@1", "Production", "first fraud model", "Maria Test")
    assert v1.metrics == {"auc": 0.91}
    assert v1.params == {"depth": "6"}
    assert v1.created_at.tzinfo is not None and v1.created_at.utcoffset() == timezone.utc.utcoffset(None)
    assert v1.artifact.files is not None
    assert {f.path: f.sha256 for f in v1.artifact.files} == tree(fx.v1)
    assert reg.get("fraud@production").version == 1
    assert reg.get("fraud@PRODUCTION").version == 1
    assert reg.get("fraud@latest").version == 2
    v2 = reg.get_model("fraud", stage="Staging")
    assert v2.version == 2
    assert v2.lineage is not None and v2.lineage["data"][0]["id"] == "txn-q3"
    tiny = reg.get("tiny@1")
    assert tiny.artifact.files is None
    assert tiny.artifact.sha256 == hashlib.sha256(fx.single.read_bytes()).hexdigest()


def test_versions_and_search_return_summary_rows(reg: Registry) -> None:
    rows = reg.versions("fraud")
    assert [v.version for v in rows] == [2, 1]
    assert rows[0].lineage is None and rows[0].artifact.files is None and rows[0].metrics == {"auc": 0.95}
    assert [v.ref for v in reg.search("metrics.auc > 0.92")] == ["fraud@2"]
    assert [v.ref for v in reg.search("lineage.data.id = 'txn-q3'")] == ["fraud@2"]
    assert [v.ref for v in reg.search(stage="Production")] == ["fraud@1"]
    assert [v.ref for v in reg.search(model="tiny")] == ["tiny@1"]
    assert {v.ref for v in reg.search()} == {"fraud@1", "fraud@2", "tiny@1"}


def test_errors_are_typed_with_serves_codes(reg: Registry) -> None:
    with pytest.raises(InvalidRequest) as bare:
        reg.get("fraud")
    assert (bare.value.code, bare.value.status) == ("E_BARE_MODEL_REF", None)
    with pytest.raises(NotFound) as missing:
        reg.get("fraud@9")
    assert (missing.value.code, missing.value.status) == ("E_NOT_FOUND", 404)
    with pytest.raises(NotFound) as unknown:
        reg.model("nope")
    assert unknown.value.code == "E_NOT_FOUND"
    with pytest.raises(InvalidRequest) as syntax:
        reg.search("metrics.auc >")
    assert (syntax.value.code, syntax.value.status) == ("E_WHERE_SYNTAX", 400)
    with pytest.raises(InvalidRequest) as malformed:
        reg.get("fraud@not/a/ref")
    assert (malformed.value.code, malformed.value.status) == ("E_USAGE", 400)
    with pytest.raises(Unauthorized) as wrong_token:
        Registry(reg.url, token=TOKEN).models()
    assert (wrong_token.value.code, wrong_token.value.status) == ("E_UNAUTHENTICATED", 401)
    assert isinstance(wrong_token.value, modelgate.ModelgateError)
    assert TOKEN not in repr(Registry(reg.url, token=TOKEN))


def test_unreachable_server() -> None:
    with pytest.raises(Unreachable) as e:
        Registry("http://127.0.0.1:9", timeout=10).models()
    assert (e.value.code, e.value.status) == (None, None)


def test_tokens_for_private_reads(fx: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice {TOKEN}\n")
    s = Serve(fx.root, "--tokens", str(tokens), "--private-reads")
    try:
        monkeypatch.delenv("MODELGATE_TOKEN", raising=False)
        with pytest.raises(Unauthorized) as anonymous:
            Registry(s.url).get("fraud@1")
        assert anonymous.value.code == "E_UNAUTHENTICATED"
        assert Registry(s.url, token=TOKEN).get("fraud@1").version == 1
        monkeypatch.setenv("MODELGATE_TOKEN", TOKEN)
        assert Registry(s.url).get("fraud@production").version == 1
        # The artifact routes need the token too, and get it.
        assert tree(Registry(s.url).download("tiny@1", tmp_path / "tiny")) == {"weights.bin": hashlib.sha256(fx.single.read_bytes()).hexdigest()}
    finally:
        s.stop()
    assert TOKEN not in s.log


def test_download_a_folder(reg: Registry, fx: Fixture, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "fraud"
    assert reg.download("fraud@production", dest) == dest
    assert tree(dest) == tree(fx.v1)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fraud"]
    # Into a folder that exists: the version's files replace theirs, other files stay.
    (dest / "notes.txt").write_text("mine")
    reg.download("fraud@2", dest)
    assert tree(dest) == {**tree(fx.v2), "notes.txt": hashlib.sha256(b"mine").hexdigest()}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fraud"]


def test_download_a_single_file(reg: Registry, fx: Fixture, tmp_path: Path) -> None:
    dest = reg.download("tiny@latest", tmp_path / "tiny")
    assert tree(dest) == {"weights.bin": hashlib.sha256(fx.single.read_bytes()).hexdigest()}


def test_download_refuses_a_file_as_destination(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(InvalidRequest) as e:
        reg.download("tiny@1", tmp_path / "taken")
    assert e.value.code == "E_USAGE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def tamper(store: Path, original: Path) -> None:
    """Flips one bit of the store's object holding `original`'s bytes: same size, other bytes."""
    want = hashlib.sha256(original.read_bytes()).hexdigest()
    victim = next(p for p in store.rglob("*") if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == want)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(victim, stat.S_IWUSR | stat.S_IRUSR)
    victim.write_bytes(bytes(data))


def test_tampered_objects_fail_the_download_and_leave_nothing(tmp_path: Path) -> None:
    fx = make_fixture(tmp_path / "tampered")
    # fraud@2: its second file, config.json (smaller than a chunk: serve answers nothing), after
    # model.bin has been staged. fraud@1: its model.bin (1.28 MB: serve cuts it short).
    tamper(fx.store, fx.v2 / "sub" / "config.json")
    tamper(fx.store, fx.v1 / "model.bin")
    s = Serve(fx.root)
    try:
        reg = Registry(s.url)
        out = tmp_path / "out"
        out.mkdir()
        for ref in ("fraud@2", "fraud@1"):
            with pytest.raises(DownloadError) as e:
                reg.download(ref, out / "fraud")
            assert e.value.code == "E_DOWNLOAD"
            assert list(out.iterdir()) == []
        # Into a folder that holds another version's files: it is left as it was.
        reg.download("tiny@1", out / "fraud")
        before = tree(out / "fraud")
        for ref in ("fraud@2", "fraud@1"):
            with pytest.raises(DownloadError):
                reg.download(ref, out / "fraud")
            assert tree(out / "fraud") == before
            assert sorted(p.name for p in out.iterdir()) == ["fraud"]
    finally:
        s.stop()
    assert s.log.count("sha256 check") >= 4


class CorruptingProxy:
    """A proxy in front of serve that flips one byte of every artifact file it passes, keeping
    sizes and headers: what the client's own sha256 check is for (serve's check has passed)."""

    def __init__(self, upstream: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                try:
                    with urllib.request.urlopen(urllib.request.Request(upstream + self.path, headers=headers), timeout=60) as r:
                        status, body, sent = r.status, bytearray(r.read()), r.headers
                except urllib.error.HTTPError as e:
                    status, body, sent = e.code, bytearray(e.read()), e.headers
                if status == 200 and self.path.startswith("/api/2.0/mlflow-artifacts/artifacts/") and body:
                    body[0] ^= 0x01
                self.send_response(status)
                for k in ("content-type", "x-modelgate-sha256"):
                    if sent.get(k):
                        self.send_header(k, sent[k])
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bytes_changed_after_serve_fail_the_clients_own_check(reg: Registry, tmp_path: Path) -> None:
    proxy = CorruptingProxy(reg.url)
    try:
        via = Registry(proxy.url)
        assert via.get("fraud@1").version == 1
        with pytest.raises(IntegrityError) as e:
            via.download("fraud@1", tmp_path / "fraud")
        assert (e.value.code, isinstance(e.value, DownloadError)) == ("E_INTEGRITY", True)
        assert list(tmp_path.iterdir()) == []
    finally:
        proxy.close()


def test_download_a_folder_indexed_in_the_store(tmp_path: Path) -> None:
    # More than 1,000 files: the manifest records an index in the store, not the file list, so
    # the client lists the files through serve and checks each against the digest serve sends.
    base = tmp_path / "indexed"
    base.mkdir()
    run_cli("init", "reg", "--store", (base / "store").as_uri(), cwd=base)
    root = base / "reg"
    git("config", "user.name", "Maria Test", cwd=root)
    git("config", "user.email", "maria@example.com", cwd=root)
    src = base / "shards"
    for i in range(1001):
        (src / f"part-{i // 100}").mkdir(parents=True, exist_ok=True)
        (src / f"part-{i // 100}" / f"shard-{i}.txt").write_text(f"shard {i}\n")
    run_cli("register", "big", str(src), "--format", "other", cwd=root)
    s = Serve(root)
    try:
        reg = Registry(s.url)
        assert reg.get("big@1").artifact.files is None
        # 1,001 files and 11 listings: more requests than serve's rate limit lets through in a
        # minute, so the client waits as serve tells it to (Retry-After) and goes on.
        dest = reg.download("big@1", tmp_path / "big")
        assert tree(dest) == tree(src)
        impatient = Registry(s.url, rate_limit_retries=0)
        with pytest.raises(RateLimited) as e:
            for _ in range(601):
                impatient.models()
        assert (e.value.code, e.value.status) == ("E_RATE_LIMITED", 429)
    finally:
        s.stop()
