"""Search jobs through the SDK: a trial script, the auto_search policy, and waiting for trials."""

from __future__ import annotations

import ast
import re
from typing import Any

from huaweicloudsdkmodelarts.v1 import (
    AlgoConfigs,
    AutoSearch,
    AutoSearchAlgoConfigParameter,
    JobPolicies,
    RewardAttrs,
    SearchParams,
    ShowAutoSearchTrialsRequest,
)

from tests.support.server import LiveServer
from tests.training.jobs_support import python_job

QUADRATIC = """
import sys, time
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
x, y = float(args["x"]), float(args["y"])
time.sleep(float(args.get("pause", "0")))
print(f"loss={(x - 1.5) ** 2 + (y + 2.0) ** 2:.6f}", flush=True)
"""


def search_policy(
    algorithm: str = "tpe_search",
    *,
    samples: int = 8,
    seed: int = 1,
    regex: str = r"loss=([-0-9.eE]+)",
    extra: dict[str, str] | None = None,
) -> JobPolicies:
    params = {"num_samples": str(samples), "seed": str(seed), **(extra or {})}
    return JobPolicies(
        auto_search=AutoSearch(
            reward_attrs=[RewardAttrs(name="loss", mode="min", regex=regex)],
            search_params=[
                SearchParams(name="x", param_type="continuous", lower_bound="-5", upper_bound="5"),
                SearchParams(name="y", param_type="continuous", lower_bound="-5", upper_bound="5"),
            ],
            algo_configs=[
                AlgoConfigs(
                    name=algorithm,
                    params=[AutoSearchAlgoConfigParameter(key=k, value=v) for k, v in params.items()],
                )
            ],
        )
    )


def search_job(name: str, server: LiveServer, policy: JobPolicies, script: str = QUADRATIC, **options: Any) -> Any:
    request = python_job(name, "search-bucket", script, server, **options)
    request.body.algorithm.policies = policy
    return request


def trials(client: Any, job_id: str) -> Any:
    return client.show_auto_search_trials(ShowAutoSearchTrialsRequest(training_job_id=job_id, limit=200))


def rows(client: Any, job_id: str) -> list[dict[str, Any]]:
    """The trial table as dicts. The server sends ``config`` as a JSON object, as the seed does; the SDK's
    model types every cell as a string and hands over Python's text of the dict it parsed."""
    table = trials(client, job_id).items
    result = []
    for row in table.data:
        cells = dict(zip(table.header, row, strict=True))
        if isinstance(cells["config"], str):  # numbers come as Decimal('1.5') in that text
            cells["config"] = ast.literal_eval(re.sub(r"Decimal\('([^']*)'\)", r"\1", cells["config"]))
        result.append(cells)
    return result
