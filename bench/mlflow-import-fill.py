"""Fills a real MLflow tracking server (MLFLOW_TRACKING_URI) with N registered versions for
bench/mlflow-import.bench.mjs, through the real MLflow client, quickly: one scikit-learn model is
saved once with mlflow.sklearn.save_model, copied N times (each copy made distinct by one small
file, so every version has its own bytes), all N copies logged as artifacts of ONE run (uploaded
through the server's artifact proxy by 8 threads), then N versions of one registered model created
from them, `runs:/<run>/m<i>`, by 8 threads in parallel. Then times what MLflow's own client takes
to download every version's artifacts, one after the other, with
mlflow.artifacts.download_artifacts("models:/<name>/<v>"), and prints {"seconds": …, "bytes": …}
as JSON on stdout.

Usage: python mlflow-import-fill.py fill <name> <N>    (prints nothing)
       python mlflow-import-fill.py download <name> <N> <dest>
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient

warnings.filterwarnings("ignore")

THREADS = 8


def fill(name: str, n: int) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient()
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    mlflow.set_experiment("import-bench")
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one")
        mlflow.sklearn.save_model(model, one, pip_requirements=["scikit-learn"])
        with mlflow.start_run(run_name="bench") as run:
            mlflow.log_params({"max_iter": 300})
            mlflow.log_metrics({"accuracy": round(model.score(x, y), 4)})
        run_id = run.info.run_id

        def upload(i: int) -> None:
            folder = os.path.join(tmp, f"m{i}")
            shutil.copytree(one, folder)
            with open(os.path.join(folder, "version.txt"), "w") as f:
                f.write(f"{i}\n")
            client.log_artifacts(run_id, folder, f"m{i}")

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(upload, range(1, n + 1)))
    client.create_registered_model(name, description="bench model")

    # MLflow numbers versions as they are created: each is made from its own folder, in any order.
    def register(i: int) -> None:
        client.create_model_version(name, f"runs:/{run_id}/m{i}", run_id=run_id)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(register, range(1, n + 1)))


def download(name: str, n: int, dest: str) -> None:
    start = time.perf_counter()
    for v in range(1, n + 1):
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{v}", dst_path=os.path.join(dest, str(v)))
    seconds = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(dest) for f in fs)
    print(json.dumps({"seconds": seconds, "bytes": size}))


if __name__ == "__main__":
    if sys.argv[1] == "fill":
        fill(sys.argv[2], int(sys.argv[3]))
    else:
        download(sys.argv[2], int(sys.argv[3]), sys.argv[4])
