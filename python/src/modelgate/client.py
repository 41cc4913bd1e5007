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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._version import __version__
from .errors import (
    DownloadError,
    IntegrityError,
    InvalidRequest,
    ModelgateError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
)
from .results import Model, ModelSummary, ModelVersion

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
    """A registry served by ``modelgate serve``, read through its ``/api/v1``.

    Args:
        url: serve's base URL, e.g. ``"http://modelgate.ml.svc:8080"``.
        token: a bearer token from serve's ``--tokens`` file; default: the ``MODELGATE_TOKEN``
            environment variable, else none (enough for a serve whose reads are open).
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

    def _json(self, path: str, query: dict[str, str] | None = None) -> Any:
        with self._open(path, query, accept="application/json") as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError:
            raise ServerError(None, f"GET {path} answered something that is not JSON", response.status) from None

    @contextmanager
    def _open(self, path: str, query: dict[str, str] | None = None, *, accept: str = "*/*", download: bool = False) -> Iterator[http.client.HTTPResponse]:
        """GET `path`: the answer when it is a success, else the typed error of serve's. A request
        with no answer raises Unreachable, or DownloadError for a file of a `download`."""
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": accept, "User-Agent": f"modelgate-python/{__version__}"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._urlopen(urllib.request.Request(url, headers=headers))
        except urllib.error.HTTPError as e:
            with e:
                raise _error_of(e.code, e.read(), e.reason) from None
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            if download:
                raise DownloadError(
                    "E_DOWNLOAD", f"GET {url}: {reason} (serve gives no answer for a file smaller than a chunk whose stored bytes fail their check)"
                ) from None
            raise Unreachable(None, f"GET {url}: {reason}") from None
        with response:
            yield response

    def _urlopen(self, request: urllib.request.Request) -> http.client.HTTPResponse:
        """Sends `request`; a 429 is retried after the wait serve names (Retry-After), up to `rate_limit_retries` times."""
        attempt = 0
        while True:
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
