"""Fills a real MLflow tracking server (MLFLOW_TRACKING_URI) with the real MLflow client, for
test/import-mlflow.test.ts: three models, twelve versions from scikit-learn runs, stage
transitions, aliases, version tags and descriptions, one version deleted. Writes to the file named
by its argument, as JSON, what MLflow answers afterwards (the registry the import must reproduce).
Usage: python mlflow-fill.py <out.json> (MLFLOW_TRACKING_URI names the server)."""

from __future__ import annotations

import json
import sys
import warnings

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")

PLAN = {"fraud-detector": 5, "churn": 4, "iris": 3}


def main() -> None:
    client = MlflowClient()
    x, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment("import-test")
    for name in PLAN:
        client.create_registered_model(name, description=f"{name} model", tags={"team": "risk"})
    step = 0
    # Versions interleaved across models, in creation order.
    for round_ in range(max(PLAN.values())):
        for name, count in PLAN.items():
            if round_ >= count:
                continue
            step += 1
            c = 0.5 + round_
            with mlflow.start_run(run_name=f"{name}-{round_ + 1}") as run:
                model = LogisticRegression(C=c, max_iter=300).fit(x, y)
                mlflow.log_params({"C": c, "max_iter": 300})
                mlflow.log_metrics({"accuracy": round(model.score(x, y), 4), "auc": 0.9 + step / 1000})
                mlflow.set_tag("owner", "maria")
                mlflow.sklearn.log_model(model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"])
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
            client.update_model_version(name, mv.version, description=f"{name} v{mv.version}")
            client.set_model_version_tag(name, mv.version, "validation_status", "passed" if round_ % 2 == 0 else "pending")
    # Stages and aliases.
    client.transition_model_version_stage("fraud-detector", "2", "Production")
    client.transition_model_version_stage("fraud-detector", "4", "Staging")
    client.transition_model_version_stage("fraud-detector", "1", "Archived")
    client.transition_model_version_stage("churn", "1", "Staging")
    client.transition_model_version_stage("churn", "3", "Production")
    client.transition_model_version_stage("iris", "2", "Production")
    client.set_registered_model_alias("fraud-detector", "champion", "2")
    client.set_registered_model_alias("fraud-detector", "challenger", "4")
    client.set_registered_model_alias("churn", "champion", "3")
    # One deleted version.
    client.delete_model_version("fraud-detector", "3")
    dump(client)


def dump(client: MlflowClient) -> None:
    passed = client.search_model_versions("tags.validation_status = 'passed'")
    out: dict[str, object] = {"passed": sorted(f"{v.name}/{v.version}" for v in passed), "models": {}}
    models: dict[str, object] = out["models"]  # type: ignore[assignment]
    for m in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{m.name}'")
        models[m.name] = {
            "aliases": dict(m.aliases),
            "versions": {
                v.version: {
                    "stage": v.current_stage,
                    "run_id": v.run_id,
                    "source": v.source,
                    "tags": v.tags,
                    "description": v.description,
                    "created": v.creation_timestamp,
                    "user": v.user_id,
                    "metrics": client.get_run(v.run_id).data.metrics,
                    "params": client.get_run(v.run_id).data.params,
                }
                for v in versions
            },
        }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
