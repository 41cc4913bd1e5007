"""Typed errors. Every failure of a `Registry` call is a `ModelgateError`; the subclass says which
kind, `code` carries serve's stable `E_…` code (the codes of `modelgate`'s CLI) when serve gave one."""

from __future__ import annotations


class ModelgateError(Exception):
    """A call to serve failed.

    Attributes:
        code: serve's stable error code (``"E_NOT_FOUND"``, ``"E_WHERE_SYNTAX"``, …), or ``None``
            when the failure did not come with one (a proxy's answer, a broken connection).
        message: what went wrong, as serve (or the client) words it.
        status: the HTTP status of serve's answer, or ``None`` when there was no answer.
    """

    def __init__(self, code: str | None, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.status = status


class InvalidRequest(ModelgateError):
    """The request is wrong (HTTP 400, or refused before it was sent): a malformed reference, a
    bare model name where a version is meant (``E_BARE_MODEL_REF``), a `where` that does not parse."""


class Refused(ModelgateError):
    """serve understood a write and refused it (HTTP 409/422), with the code of the rule: the bytes
    received are not the ones declared (``E_UPLOAD_DIGEST``), the pickle scan found globals the
    policy does not allow (``E_PICKLE_SCAN``), the change would change nothing (``E_NO_CHANGE``),
    a rule of the registry forbids it (an alias on a version to archive, metadata the manifest
    cannot hold: ``E_SCHEMA``)."""


class Unauthorized(ModelgateError):
    """The bearer token is missing where serve needs one, or is not valid for it (HTTP 401/403)."""


class NotFound(ModelgateError):
    """The model, version or artifact does not exist (HTTP 404)."""


class RateLimited(ModelgateError):
    """Too many requests from this client (HTTP 429); retry later."""


class ServerError(ModelgateError):
    """serve failed or is not ready (HTTP 5xx), or answered something that is not its API."""


class Unreachable(ModelgateError):
    """No answer: serve cannot be reached, or the connection broke or timed out."""


class DownloadError(ModelgateError):
    """A file of a download did not arrive whole (code ``E_DOWNLOAD``): serve answers nothing or
    cuts a file short when the store's bytes fail its sha256 check (its log says so), and a
    connection that breaks mid-file looks the same to the client."""


class IntegrityError(DownloadError):
    """A downloaded file arrived whole but is not the one the version records (code
    ``E_INTEGRITY``): its sha256 or size differs from the manifest's."""
