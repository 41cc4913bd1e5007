"""modelgate for Python: the client of ``modelgate serve``'s ``/api/v1``.

>>> from modelgate import Registry
>>> reg = Registry("http://localhost:8080", token="…")
>>> reg.get("fraud@production").metrics
{'auc': 0.97}
"""

from ._version import __version__
from .client import Registry
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
from .results import Artifact, ArtifactFile, Change, HistoryEntry, Model, ModelSummary, ModelVersion, PullRequest, Registration

__all__ = [
    "Artifact",
    "ArtifactFile",
    "Change",
    "DownloadError",
    "HistoryEntry",
    "IntegrityError",
    "InvalidRequest",
    "Model",
    "ModelSummary",
    "ModelVersion",
    "ModelgateError",
    "NotFound",
    "PullRequest",
    "RateLimited",
    "Refused",
    "Registration",
    "Registry",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "__version__",
]
