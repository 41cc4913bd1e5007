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
