"""The training step: fit a classifier on the iris data set and write a ModelArts model package.

Run by the workflow's job step as ``python train.py --train_output=<folder>``: the folder is the job's
``train_output`` output, uploaded to object storage when the job ends. The package is ``model/`` with the
pickled model (``model.m``, joblib, as ModelArts' scikit-learn runtime loads it) and ``config.json``
(copied from beside this script), the layout the ``model`` step registers.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import joblib  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_output", required=True, help="the job's output folder")
    args = parser.parse_args()
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    model = LogisticRegression(max_iter=500).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    package = Path(args.train_output) / "model"
    package.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, package / "model.m")
    shutil.copy(Path(__file__).with_name("config.json"), package / "config.json")
    # Also read by a condition step or the step's metrics (the keys of metrics.json in an output).
    (Path(args.train_output) / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    print(f"accuracy {accuracy:.3f}; package written to {package}")


if __name__ == "__main__":
    main()
