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
    ServerError,
    Unauthorized,
    Unreachable,
)
from .results import Artifact, ArtifactFile, Model, ModelSummary, ModelVersion

__all__ = [
    "Artifact",
    "ArtifactFile",
    "DownloadError",
    "IntegrityError",
    "InvalidRequest",
    "Model",
    "ModelSummary",
    "ModelVersion",
    "ModelgateError",
    "NotFound",
    "RateLimited",
    "Registry",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "__version__",
]
