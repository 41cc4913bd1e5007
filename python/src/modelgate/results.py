"""What `Registry` calls return: frozen dataclasses built from serve's JSON, with the field names
of Python (``created_at``, ``params``) for the manifest's (``createdAt``, ``parameters``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _timestamp(text: str) -> datetime:
    # Python 3.10's fromisoformat does not read a trailing "Z".
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


@dataclass(frozen=True)
class ArtifactFile:
    """One file of a folder artifact: its path inside the folder, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Artifact:
    """A version's bytes in the store.

    Attributes:
        uri: where the store holds them (``s3://…`` or ``file://…``).
        sha256: the digest of the file, or of the folder's file list.
        size: bytes in all.
        files: a folder's files; ``None`` for a single file, for a folder of more than 1,000
            files (listed in the store instead), and in search results (which carry no file list).
    """

    uri: str
    sha256: str
    size: int
    files: tuple[ArtifactFile, ...] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        files = data.get("files")
        return cls(
            uri=data["uri"],
            sha256=data["sha256"],
            size=data["size"],
            files=None if files is None else tuple(ArtifactFile(f["path"], f["sha256"], f["size"]) for f in files),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model, as its manifest records it.

    `Registry.get` returns the whole manifest. `Registry.versions` and `Registry.search` return
    serve's summary rows, which leave out the lineage, description, signature, framework and the
    artifact's file list: those fields are ``None`` there (call `get` for them).

    Attributes:
        model: the model's name.
        version: the version number (1, 2, …).
        stage: ``"None"``, ``"Staging"``, ``"Production"`` or ``"Archived"``.
        aliases: the aliases pointing at this version, when serve says.
        created_at: when it was registered.
        created_by: who registered it, when known.
        format: the artifact's format (``"mlflow"``, ``"onnx"``, ``"joblib"``, …).
        artifact: where its bytes are, their digest and size.
        metrics: name → number.
        params: the training parameters, name → string, number or boolean.
        annotations: name → text.
        lineage: code, data, run and environment, as the manifest nests them.
        description: what this version is.
        framework: ``{"name": …, "version": …}`` of what produced it.
        signature: MLflow's signature ``{inputs, outputs, params}``.
    """

    model: str
    version: int
    stage: str
    created_at: datetime
    created_by: str | None
    format: str
    artifact: Artifact
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str | float | bool] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    lineage: dict[str, Any] | None = None
    description: str | None = None
    framework: dict[str, str] | None = None
    signature: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        """``"<model>@<version>"``: the reference that names exactly this version."""
        return f"{self.model}@{self.version}"

    @classmethod
    def from_json(cls, data: dict[str, Any], *, whole: bool) -> ModelVersion:
        """From a manifest (`whole`) or a summary row of a list or search."""
        return cls(
            model=data["model"],
            version=data["version"],
            stage=data["stage"],
            created_at=_timestamp(data["createdAt"]),
            created_by=data.get("createdBy"),
            format=data["format"],
            artifact=Artifact.from_json(data["artifact"]),
            metrics=dict(data.get("metrics") or {}),
            params=dict(data.get("parameters") or {}),
            annotations=dict(data.get("annotations") or {}),
            aliases=tuple(data.get("aliases") or ()),
            lineage=dict(data.get("lineage") or {}) if whole else None,
            description=data.get("description"),
            framework=data.get("framework"),
            signature=data.get("signature"),
        )


@dataclass(frozen=True)
class ModelSummary:
    """A row of `Registry.models`: a model's name, description, number of versions and newest one."""

    name: str
    description: str | None
    version_count: int
    latest: int | None


@dataclass(frozen=True)
class Model:
    """A model, as `Registry.model` returns it.

    Attributes:
        name: the model's name.
        description: what it is for.
        owners: who owns it (GitHub users or teams).
        retired: no new versions are taken.
        versions: its version numbers, oldest first.
        stages: the newest version in each stage that has one, stage → version number.
        aliases: alias → version number, where serve reports aliases (empty otherwise).
    """

    name: str
    description: str | None
    owners: tuple[str, ...]
    retired: bool
    versions: tuple[int, ...]
    stages: dict[str, int]
    aliases: dict[str, int]


@dataclass(frozen=True)
class PullRequest:
    """The pull request that carries a write (``modelgate serve --writes pr``): nothing has changed
    in the registry until it passes the gate and merges.

    Attributes:
        number: its number on GitHub.
        url: its page.
        created: ``False`` when an open pull request of the same change was updated instead.
    """

    number: int
    url: str
    created: bool = True

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PullRequest | None:
        return None if data is None else cls(data["number"], data["url"], bool(data.get("created", True)))


@dataclass(frozen=True)
class Change:
    """What a write did: `Registry.promote` and `Registry.set_alias` return it.

    Attributes:
        summary: one line, e.g. ``"Promote fraud@3 to Production"``.
        changes: one line per version or alias moved.
        commit: the commit made (with ``--writes pr``, the one on the pull request's branch), or
            ``None`` when nothing needed committing.
        pushed: the commit was pushed to the registry's branch (``--writes push``).
        pull_request: the pull request that carries it (``--writes pr``), else ``None``: then the
            change is in the registry already.
    """

    summary: str
    changes: tuple[str, ...]
    commit: str | None
    pushed: bool
    pull_request: PullRequest | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(data["summary"], tuple(data["changes"]), data.get("commit"), bool(data.get("pushed")), PullRequest.from_json(data.get("pullRequest")))


@dataclass(frozen=True)
class Registration:
    """What `Registry.register` did: the new version and how it landed.

    Attributes:
        model: the model's name.
        version: the number the version got (with ``--writes pr``: the number its pull request
            registers, in the registry once it merges).
        sha256: the artifact's digest (a folder's: the digest of its file list).
        uri: where the store holds the bytes.
        size: bytes in all.
        commit: the registration's commit (with ``--writes pr``, on the pull request's branch).
        pushed: the commit was pushed to the registry's branch (``--writes push``).
        pull_request: the pull request that carries it (``--writes pr``), else ``None``.
        sent: paths whose bytes were uploaded.
        skipped: paths the store held already, so not sent.
        findings: the pickle scan's findings (``file``, ``offset``, ``kind``, ``global``), empty
            when clean; where the policy asks for ``scan: pickle`` any finding refuses the version.
    """

    model: str
    version: int
    sha256: str
    uri: str
    size: int
    commit: str | None
    pushed: bool
    pull_request: PullRequest | None
    sent: tuple[str, ...]
    skipped: tuple[str, ...]
    findings: tuple[dict[str, Any], ...]

    @property
    def ref(self) -> str:
        """``"<model>@<version>"``."""
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class HistoryEntry:
    """One stage change or alias move of a model, as `Registry.history` returns them (oldest first).

    Attributes:
        date: when its commit was made.
        author: the commit's author.
        commit: the commit.
        pull_request: the number of the pull request that merged it, when it came through one.
        version: the version whose stage changed (for an alias move, the version it points to now).
        alias: the alias that moved; ``None`` for a stage change.
        before: the stage before (``None``: a new version), or for an alias the version before.
        after: the stage after, or for an alias the version after (``None``: removed).
        approvers: who approved it, as its decision record proves (empty when none does).
        record: the decision record's state (``"valid"``, ``"none"``, ``"not-a-pull-request"``, …).
    """

    date: datetime
    author: str
    commit: str
    pull_request: int | None
    version: int
    alias: str | None
    before: str | int | None
    after: str | int | None
    approvers: tuple[str, ...]
    record: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        decision = data.get("decision") or {}
        return cls(
            date=_timestamp(data["date"]),
            author=data["author"],
            commit=data["commit"],
            pull_request=data.get("pullRequest"),
            version=data["version"],
            alias=data.get("alias"),
            before=data.get("from"),
            after=data.get("to"),
            approvers=tuple(a["login"] for a in decision.get("approvers") or ()),
            record=decision.get("record", "none"),
        )
