"""Schemathesis fuzzes serve's /api/v1 from its own OpenAPI 3.1 document, with every check (its
default; schemathesis.toml beside this file says which one is off where, and why):
server errors, status codes and content types the document declares, response schemas,
undeclared methods, schema-valid requests accepted and invalid ones refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ROOT, Serve

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_api_v1_conforms_to_its_openapi_document(server: Serve) -> None:
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
