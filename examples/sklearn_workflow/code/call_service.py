"""The calling step: send one prediction request to the service the workflow deployed.

Run by the workflow's last job step. ``INFER_ADDRESS`` is the service step's ``access_address``
(``$ref/consumptions/deploy/service_output/access_address`` in the job's environments). The call is
authenticated with an IAM token read from ``--credentials=<folder>``: a job input holding a file
``token``, written there by whoever runs the workflow (see the README). The token never appears in the
workflow, its executions or the job's environment; only the folder's address does.

The answer is written to ``--result=<folder>/prediction.json``; a refused call fails the step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx

ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credentials", required=True, help="a folder holding the caller's token")
    parser.add_argument("--result", required=True, help="where prediction.json is written")
    args = parser.parse_args()
    address = os.environ["INFER_ADDRESS"]
    token = (Path(args.credentials) / "token").read_text().strip()
    body = json.dumps({"meta": {"uuid": "workflow-call"}, "data": {"req_data": ROWS}}).encode()
    headers = {"Content-Type": "application/json", "X-Auth-Token": token}
    response = httpx.post(address, content=body, headers=headers, timeout=60)
    if response.status_code != 200:
        print(f"the service refused the call: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    answer = response.json()
    Path(args.result).mkdir(parents=True, exist_ok=True)
    (Path(args.result) / "prediction.json").write_text(json.dumps(answer))
    print(f"{address} answered {json.dumps(answer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
