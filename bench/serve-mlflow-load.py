"""Loads the registry content `modelgate serve` answers into a real MLflow server's SQLite store,
for bench/serve.bench.mjs: the same registered models, versions, stages, tags and aliases, as
serve's own MLflow records (one JSON line per model: {"model": RegisteredModel, "versions":
[ModelVersion, ...]}). The schema is made by MLflow's SqlAlchemyStore (its migrations); the rows
are written in bulk through MLflow's own SQLAlchemy model classes, one transaction per model (the
REST API takes about 10 ms a write, over an hour for 100,000 versions with their tags).

usage: python serve-mlflow-load.py <sqlite-file> < records.jsonl
"""

from __future__ import annotations

import json
import sys

from mlflow.store.model_registry.dbmodels.models import (
    SqlModelVersion,
    SqlModelVersionTag,
    SqlRegisteredModel,
    SqlRegisteredModelAlias,
    SqlRegisteredModelTag,
)
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore


def main() -> None:
    db = sys.argv[1]
    store = SqlAlchemyStore(f"sqlite:///{db}")
    versions = 0
    for line in sys.stdin:
        record = json.loads(line)
        model = record["model"]
        name = model["name"]
        rows: list[object] = [
            SqlRegisteredModel(
                name=name,
                creation_time=model.get("creation_timestamp", 0),
                last_updated_time=model.get("last_updated_timestamp", 0),
                description=model.get("description"),
            )
        ]
        rows += [
            SqlRegisteredModelTag(name=name, key=t["key"], value=t["value"])
            for t in model.get("tags", [])
        ]
        rows += [
            SqlRegisteredModelAlias(
                name=name, alias=a["alias"], version=int(a["version"])
            )
            for a in model.get("aliases", [])
        ]
        for v in record["versions"]:
            number = int(v["version"])
            rows.append(
                SqlModelVersion(
                    name=name,
                    version=number,
                    creation_time=v["creation_timestamp"],
                    last_updated_time=v["last_updated_timestamp"],
                    description=v.get("description"),
                    user_id=v.get("user_id"),
                    current_stage=v["current_stage"],
                    source=v["source"],
                    storage_location=v["source"],
                    run_id=v.get("run_id"),
                    run_link=v.get("run_link"),
                    status="READY",
                )
            )
            rows += [
                SqlModelVersionTag(
                    name=name, version=number, key=t["key"], value=t["value"]
                )
                for t in v.get("tags", [])
            ]
            versions += 1
        with store.ManagedSessionMaker() as session:
            session.add_all(rows)
    print(json.dumps({"versions": versions}))


if __name__ == "__main__":
    main()
