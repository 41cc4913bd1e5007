"""`Registry`: the client of `modelgate serve`'s `/api/v1`."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ._version import __version__
from .errors import (
    DownloadError,
    IntegrityError,
    InvalidRequest,
    ModelgateError,
    NotFound,
    RateLimited,
    Refused,
    ServerError,
    Unauthorized,
    Unreachable,
)
from .results import Change, HistoryEntry, Model, ModelSummary, ModelVersion, PullRequest, Registration

API = "/api/v1"
# serve's MLflow artifact API: every file streams through a check of its sha256 there.
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1 << 20
# The longest wait for a rate limit to lift that a call sits out before retrying, in seconds.
MAX_RETRY_WAIT = 60.0


@dataclass(frozen=True)
class _Expected:
    """A file to download: its path inside the artifact and, when the manifest says, its digest and size."""

    path: str
    sha256: str | None
    size: int | None


class Registry:
    """A registry served by ``modelgate serve``, read and written through its ``/api/v1``.

    Args:
        url: serve's base URL, e.g. ``"http://modelgate.ml.svc:8080"``.
        token: a bearer token from serve's ``--tokens`` file; default: the ``MODELGATE_TOKEN``
            environment variable, else none (enough for a serve whose reads are open; every
            write needs one).
        timeout: seconds to wait for a connection or for the next bytes of an answer.
        rate_limit_retries: how many times a request that serve refuses for its rate limit (HTTP
            429) is sent again, after the wait serve names (at most a minute); then `RateLimited`
            is raised. serve counts every file of a download as a request.

    Example:
        >>> reg = Registry("http://localhost:8080")
        >>> v = reg.get("fraud@production")
        >>> v.version, v.metrics["auc"]
        (3, 0.97)
        >>> folder = reg.download("fraud@production", "models/fraud")
        >>> reg.register("fraud", "model/", metrics={"auc": 0.97}, stage="Staging").pull_request
        PullRequest(number=12, url='https://github.com/acme/model-registry/pull/12', created=True)
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, rate_limit_retries: int = 5) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.rate_limit_retries = rate_limit_retries
        self._token = token if token is not None else os.environ.get("MODELGATE_TOKEN") or None

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    # Reads

    def models(self) -> list[ModelSummary]:
        """Every model of the registry, with its number of versions and newest version."""
        data = self._json(f"{API}/models")
        return [ModelSummary(m["name"], m.get("description"), m["versions"], m["latest"]) for m in data["models"]]

    def model(self, name: str) -> Model:
        """One model: description, owners, version numbers, the newest version in each stage, aliases.

        Raises:
            NotFound: no model of that name.
        """
        m = self._json(f"{API}/models/{_segment(name)}")
        return Model(
            name=m["name"],
            description=m.get("description"),
            owners=tuple(m["owners"]),
            retired=m["retired"],
            versions=tuple(m["versions"]),
            stages=dict(m["stages"]),
            aliases=dict(m.get("aliases") or {}),
        )

    def versions(self, model: str) -> list[ModelVersion]:
        """A model's versions, newest first (summary rows: see `ModelVersion`).

        Raises:
            NotFound: no model of that name.
        """
        data = self._json(f"{API}/models/{_segment(model)}/versions")
        return [ModelVersion.from_json(v, whole=False) for v in data["versions"]]

    def get(self, ref: str) -> ModelVersion:
        """One version's whole manifest.

        Args:
            ref: ``"<model>@<version>"`` (``"fraud@3"``), ``"<model>@<stage>"`` (any case:
                ``"fraud@production"``), ``"<model>@latest"``, or ``"<model>@<alias>"`` where serve
                resolves aliases. A bare model name is refused: it does not pick a version.

        Raises:
            InvalidRequest: a bare model name (code ``E_BARE_MODEL_REF``) or a malformed reference.
            NotFound: no such model, or no version matches.
        """
        return ModelVersion.from_json(self._manifest(ref), whole=True)

    def get_model(self, name: str, *, stage: str) -> ModelVersion:
        """The newest version of `name` in `stage` (``"Production"``, ``"staging"``, …): ``get(f"{name}@{stage}")``."""
        return self.get(f"{name}@{stage}")

    def search(self, where: str | None = None, *, model: str | None = None, stage: str | None = None) -> list[ModelVersion]:
        """Versions matching a filter, in the grammar of ``modelgate list --where`` (summary rows).

        Args:
            where: e.g. ``"metrics.auc > 0.9 and lineage.data.id = 'txn-q3'"``.
            model: only this model's versions.
            stage: only versions in this stage.

        Raises:
            InvalidRequest: `where` does not parse (code ``E_WHERE_SYNTAX``).
        """
        query = {k: v for k, v in (("where", where), ("model", model), ("stage", stage)) if v is not None}
        data = self._json(f"{API}/versions", query)
        return [ModelVersion.from_json(v, whole=False) for v in data["versions"]]

    def history(self, model: str) -> list[HistoryEntry]:
        """A model's history, oldest first: every stage change and alias move, with who made it and
        the approvers its decision record proves (``modelgate history``).

        Raises:
            NotFound: no model of that name.
        """
        data = self._json(f"{API}/models/{_segment(model)}/history")
        return [HistoryEntry.from_json(h) for h in data["history"]]

    # Writes: each needs a token, and lands as serve's ``--writes`` says (a pull request by default).

    def register(
        self,
        model: str,
        path: str | os.PathLike[str],
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str | int | float | bool] | None = None,
        lineage: Mapping[str, Any] | None = None,
        stage: str | None = None,
        description: str | None = None,
        annotations: Mapping[str, str] | None = None,
        format: str | None = None,
        framework: Mapping[str, str] | None = None,
    ) -> Registration:
        """Registers the file or folder at `path` as the next version of `model`.

        Every file is hashed here first; serve answers which of them its store holds already (the
        same bytes registered before, or sent by an upload that broke off), and only the others
        are sent, each streamed from disk and checked against its sha256 by serve as it arrives.
        serve then scans the artifact with the gate's pickle scanner and registers it as
        ``modelgate register`` does (an MLflow model folder's ``MLmodel`` supplies flavors, run,
        signature and environment), landing it as its ``--writes`` says: a pull request, a push
        or a commit. If anything fails on the way, the upload is abandoned; bytes already stored
        are left to ``modelgate gc``.

        Args:
            model: the model's name (created with its first version).
            path: a file, or a folder (an MLflow model folder, a SavedModel, …).
            metrics: name → number, e.g. ``{"auc": 0.97}``.
            params: the training parameters.
            lineage: ``{"code": {"repository", "commit"}, "data": [{"id", "uri", "sha256"}],
                "run": {"id", "url", "system"}, "environment": {…}}``, as the manifest records it.
            stage: ``"None"`` (default) or ``"Staging"``; Production only through a promotion.
            description: what this version is.
            annotations: name → text (a semantic version, a contact, …).
            format: the artifact's format; default: detected from the file names as the CLI does.
            framework: ``{"name": …, "version": …}``.

        Returns:
            the `Registration`: version, digest, the pull request (with ``--writes pr``), what was sent.

        Raises:
            Unauthorized: no token, or not one serve knows.
            InvalidRequest: a bad name, stage or metadata shape (HTTP 400).
            Refused: ``E_UPLOAD_DIGEST`` (a file changed while it was sent), ``E_PICKLE_SCAN``
                (the policy asks for a clean scan), ``E_SCHEMA`` (metadata the manifest cannot hold).
        """
        files = _local_files(Path(path))
        directory = Path(path).is_dir()
        declared = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files]
        begun = self._json(f"{API}/models/{_segment(model)}/uploads", method="POST", body={"directory": directory, "files": declared})
        upload = begun["upload"]
        missing = set(begun["missing"])
        try:
            for f in files:
                if f.path in missing:
                    with open(f.absolute, "rb") as data:
                        self._json(f"{API}/uploads/{upload}", {"path": f.path}, method="PUT", data=data, size=f.size)
            metadata: dict[str, Any] = {
                k: v
                for k, v in (
                    ("metrics", dict(metrics) if metrics else None),
                    ("params", dict(params) if params else None),
                    ("lineage", dict(lineage) if lineage else None),
                    ("stage", stage),
                    ("description", description),
                    ("annotations", dict(annotations) if annotations else None),
                    ("format", format),
                    ("framework", dict(framework) if framework else None),
                )
                if v is not None
            }
            done = self._json(f"{API}/uploads/{upload}/register", method="POST", body=metadata)
        except BaseException:
            with suppress(ModelgateError):
                self._json(f"{API}/uploads/{upload}", method="DELETE")
            raise
        return Registration(
            model=done["model"],
            version=done["version"],
            sha256=done["sha256"],
            uri=done["uri"],
            size=done["size"],
            commit=done.get("commit"),
            pushed=bool(done.get("pushed")),
            pull_request=PullRequest.from_json(done.get("pullRequest")),
            sent=tuple(f.path for f in files if f.path in missing),
            skipped=tuple(f.path for f in files if f.path not in missing),
            findings=tuple(done.get("findings") or ()),
        )

    def promote(self, ref: str, *, to: str) -> Change:
        """Moves a version to stage `to` (``"Staging"``, ``"Production"``, ``"Archived"``), as
        ``modelgate promote`` does: to Production archives the version there before.

        Args:
            ref: the version, ``"fraud@3"`` or any reference `get` takes (resolved here first).
            to: the stage, any case.

        Returns:
            the `Change`; with serve's ``--writes pr`` (its default) its `pull_request`: nothing
            has moved until that passes the gate and merges.

        Raises:
            Refused: the version is already there (``E_NO_CHANGE``), or a rule of the registry
                refuses the move (an alias on a version to archive, …).
            NotFound, Unauthorized: as for `register`.
        """
        model, version = self._version_of(ref)
        return Change.from_json(self._json(f"{API}/models/{_segment(model)}/versions/{version}/stage", method="POST", body={"to": to}))

    def set_alias(self, ref: str, alias: str) -> Change:
        """Points `alias` (``"champion"``) at the version `ref` names, as ``modelgate alias set`` does.

        Returns:
            the `Change`, with its `pull_request` under serve's ``--writes pr``.

        Raises:
            Refused: the alias points there already (``E_NO_CHANGE``).
            InvalidRequest: not a valid alias name.
            NotFound, Unauthorized: as for `register`.
        """
        model, version = self._version_of(ref)
        return Change.from_json(self._json(f"{API}/models/{_segment(model)}/aliases/{_segment(alias)}", method="PUT", body={"version": version}))

    def _version_of(self, ref: str) -> tuple[str, int]:
        """`ref` as model and version number: ``"fraud@3"`` as is, anything else through `get`."""
        model, at, selector = ref.partition("@")
        if at and selector.isdigit():
            return model, int(selector)
        v = self.get(ref)
        return v.model, v.version

    # Downloads

    def download(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        """Downloads a version's artifact into the folder `dest`, verified.

        Each file streams into a temporary folder beside `dest` while its sha256 is computed, and
        is checked against the manifest's digest and size (serve checks it against the store's
        bytes too, and cuts a mismatching file short). Only when every file matches do they move
        into `dest` (created, with its parents, if missing; a file already there at the same path
        is replaced). On any failure nothing is left of the download: no temporary folder, no
        partial file, no new `dest`.

        A folder artifact's files land at their paths inside `dest`; a single-file artifact lands
        as ``dest/<its file name>``.

        Returns:
            `dest`, as a `Path`.

        Raises:
            DownloadError: a file did not arrive whole (code ``E_DOWNLOAD``), which is how serve
                refuses bytes that fail its check; `IntegrityError` (code ``E_INTEGRITY``), a
                `DownloadError`, when a file arrived whole with other bytes than the recorded ones.
            NotFound, InvalidRequest, Unauthorized: as for `get`.
        """
        data = self._manifest(ref)
        version = ModelVersion.from_json(data, whole=True)
        root = f"{_segment(version.model)}/{version.version}"
        files = self._files_of(version, root, indexed="index" in data["artifact"])
        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise InvalidRequest("E_USAGE", f"{dest} exists and is not a folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.modelgate-", dir=dest.parent))
        try:
            for f in files:
                target = staging.joinpath(*PurePosixPath(f.path).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fetch(f"{ARTIFACTS}/{root}/{urllib.parse.quote(f.path)}", f, target)
            if not dest.exists():
                os.replace(staging, dest)
                return dest
            for f in files:
                target = dest.joinpath(*PurePosixPath(f.path).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging.joinpath(*PurePosixPath(f.path).parts), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest

    def download_url(self, ref: str, path: str | None = None) -> str:
        """The URL serve answers a version's bytes at (its MLflow artifact API): anyone with read
        access can GET it, and serve checks every byte against the recorded sha256 as it streams
        (a mismatching file is cut short, never served whole). A single-file artifact's URL is its
        file's; a folder's is the folder's listing, or with `path` the URL of that file in it.

        Raises:
            NotFound: no such version, or `path` names no file of it.
        """
        data = self._manifest(ref)
        version = ModelVersion.from_json(data, whole=True)
        root = f"{_segment(version.model)}/{version.version}"
        if path is None and version.artifact.files is None and "index" not in data["artifact"]:
            path = self._files_of(version, root, indexed=False)[0].path
        if path is not None and version.artifact.files is not None and all(f.path != path for f in version.artifact.files):
            raise NotFound("E_NOT_FOUND", f"{version.ref} has no file {path}")
        return f"{self.url}{ARTIFACTS}/{root}" + (f"/{urllib.parse.quote(path)}" if path is not None else "")

    def _files_of(self, version: ModelVersion, root: str, *, indexed: bool) -> list[_Expected]:
        """The files to fetch: the manifest's list for a folder; else serve's listing (a single
        file, whose digest is the artifact's, or a folder indexed in the store, whose digests come
        with each file)."""
        if version.artifact.files is not None:
            files = [_Expected(f.path, f.sha256, f.size) for f in version.artifact.files]
        else:
            listed = self._listing(root, "")
            if indexed:
                files = [_Expected(path, None, size) for path, size in listed]
            elif len(listed) == 1:
                files = [_Expected(listed[0][0], version.artifact.sha256, version.artifact.size)]
            else:
                raise ServerError(None, f"serve lists {len(listed)} files for the single-file artifact of {version.ref}")
        for f in files:
            parts = PurePosixPath(f.path).parts
            if not parts or f.path.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ServerError(None, f"{version.ref} names an unsafe file path {f.path!r}")
        return files

    def _listing(self, root: str, inner: str) -> list[tuple[str, int | None]]:
        """Every file under `inner` of the artifact at `root`, with its size, through the artifact API's listing."""
        data = self._json(ARTIFACTS, {"path": f"{root}/{inner}" if inner else root})
        found: list[tuple[str, int | None]] = []
        for entry in data.get("files", []):
            path = f"{inner}/{entry['path']}" if inner else entry["path"]
            if entry.get("is_dir"):
                found.extend(self._listing(root, path))
            else:
                found.append((path, entry.get("file_size")))
        return found

    def _fetch(self, url_path: str, expected: _Expected, target: Path) -> None:
        """Streams one file into `target`, hashing it; raises DownloadError unless it is the expected bytes, whole."""
        digest = hashlib.sha256()
        received = 0
        with self._open(url_path, download=True) as response:
            sha256 = expected.sha256 or response.headers.get("x-modelgate-sha256")
            length = response.headers.get("content-length")
            size = expected.size if expected.size is not None else int(length) if length is not None else None
            if sha256 is None or size is None:
                raise ServerError(None, f"serve gave no sha256 or size for {expected.path}")
            with open(target, "xb") as out:
                while chunk := _read(response, expected.path):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
        if received < size:
            raise DownloadError(
                "E_DOWNLOAD",
                f"{expected.path}: the answer ended after {received} of {size} bytes (serve cuts a file short when the store's bytes fail their check)",
            )
        if received != size or digest.hexdigest() != sha256:
            raise IntegrityError(
                "E_INTEGRITY",
                f"{expected.path}: received {received} bytes with sha256 {digest.hexdigest()}, where {size} bytes with sha256 {sha256} are recorded",
            )

    # HTTP

    def _manifest(self, ref: str) -> dict[str, Any]:
        model, at, selector = ref.partition("@")
        if not at:
            raise InvalidRequest(
                "E_BARE_MODEL_REF",
                f"{ref} names a model, not a version: write {ref}@<version>, {ref}@<stage>, {ref}@latest or {ref}@<alias>",
            )
        manifest: dict[str, Any] = self._json(f"{API}/models/{_segment(model)}/versions/{_segment(selector)}")
        return manifest

    def _json(
        self, path: str, query: dict[str, str] | None = None, *, method: str = "GET", body: Any = None, data: BinaryIO | None = None, size: int | None = None
    ) -> Any:
        """`method` `path` with a JSON `body` (or the bytes of `data`, `size` of them); serve's JSON answer."""
        with self._open(path, query, accept="application/json", method=method, body=body, data=data, size=size) as response:
            answer = response.read()
        if not answer and response.status == 204:
            return None
        try:
            return json.loads(answer)
        except ValueError:
            raise ServerError(None, f"{method} {path} answered something that is not JSON", response.status) from None

    @contextmanager
    def _open(
        self,
        path: str,
        query: dict[str, str] | None = None,
        *,
        accept: str = "*/*",
        download: bool = False,
        method: str = "GET",
        body: Any = None,
        data: BinaryIO | None = None,
        size: int | None = None,
    ) -> Iterator[http.client.HTTPResponse]:
        """`method` `path`: the answer when it is a success, else the typed error of serve's. A request
        with no answer raises Unreachable, or DownloadError for a file of a `download`."""
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": accept, "User-Agent": f"modelgate-python/{__version__}"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        payload: bytes | BinaryIO | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            payload = data
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Length"] = str(size)
        try:
            response = self._urlopen(urllib.request.Request(url, data=payload, headers=headers, method=method))
        except urllib.error.HTTPError as e:
            with e:
                raise _error_of(e.code, e.read(), e.reason) from None
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            if download:
                raise DownloadError(
                    "E_DOWNLOAD", f"GET {url}: {reason} (serve gives no answer for a file smaller than a chunk whose stored bytes fail their check)"
                ) from None
            raise Unreachable(None, f"{method} {url}: {reason}") from None
        with response:
            yield response

    def _urlopen(self, request: urllib.request.Request) -> http.client.HTTPResponse:
        """Sends `request`; a 429 is retried after the wait serve names (Retry-After), up to `rate_limit_retries` times."""
        attempt = 0
        while True:
            data = request.data
            if data is not None and hasattr(data, "seek"):
                data.seek(0)  # a file's bytes are sent again from the start
            try:
                response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=self.timeout)
                return response
            except urllib.error.HTTPError as e:
                if e.code != 429 or attempt >= self.rate_limit_retries:
                    raise
                wait = e.headers.get("retry-after", "")
                with e:
                    e.read()
                time.sleep(min(float(wait), MAX_RETRY_WAIT) if wait.isdigit() else 1.0)
                attempt += 1


@dataclass(frozen=True)
class _LocalFile:
    """A file to register: its path inside the artifact, where it is on disk, its sha256 and size."""

    path: str
    absolute: Path
    sha256: str
    size: int


def _local_files(root: Path) -> list[_LocalFile]:
    """The regular files of `root` (a file, or a folder walked recursively), hashed, in path order.
    Symbolic links and special files are refused, as ``modelgate register`` refuses them."""
    if root.is_file():
        return [_hashed(root.name, root)]
    if not root.is_dir():
        raise InvalidRequest("E_USAGE", f"{root}: no such file or folder")
    found: list[_LocalFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            entry = Path(dirpath, name)
            if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                raise InvalidRequest("E_USAGE", f"{entry}: only regular files and folders can be registered (symbolic link or special file)")
            if entry.is_file():
                found.append(_hashed(entry.relative_to(root).as_posix(), entry))
    if not found:
        raise InvalidRequest("E_USAGE", f"{root}: the folder holds no files")
    return sorted(found, key=lambda f: f.path.encode())


def _hashed(path: str, absolute: Path) -> _LocalFile:
    digest = hashlib.sha256()
    size = 0
    with open(absolute, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return _LocalFile(path, absolute, digest.hexdigest(), size)


def _read(response: http.client.HTTPResponse, what: str) -> bytes:
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError("E_DOWNLOAD", f"{what}: the connection broke during the download ({e})") from None


def _segment(text: str) -> str:
    """One path segment of a URL: every character that could end or leave it percent-encoded."""
    return urllib.parse.quote(text, safe="")


_BY_STATUS: dict[int, type[ModelgateError]] = {
    400: InvalidRequest,
    409: Refused,
    422: Refused,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    413: InvalidRequest,
    429: RateLimited,
    431: InvalidRequest,
}


def _error_of(status: int, body: bytes, reason: str) -> ModelgateError:
    """serve's error answer as a typed error: ``{"error": {"code", "message"}}`` under /api/v1,
    ``{"error_code", "message"}`` under MLflow's routes (whose codes are MLflow's, not modelgate's)."""
    code: str | None = None
    message = reason or f"HTTP {status}"
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = str(error.get("message", message))
        elif isinstance(data.get("message"), str):
            message = f"{data.get('error_code', '')}: {data['message']}".lstrip(": ")
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ModelgateError)
    return kind(code, message, status)
