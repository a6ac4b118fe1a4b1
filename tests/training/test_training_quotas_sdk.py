"""Per-user training quotas through the SDK; job-num is enforced at create."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    ModifyTrainingQuotaItem,
    ModifyTrainingQuotaRequest,
    ModifyTrainingQuotasRequest,
    ShowTrainingQuotasRequest,
)

from tests.support.server import LiveServer
from tests.training.jobs_support import job, wait_for


def _modify(client: Any, user_id: str | None, *items: tuple[str, int]) -> Any:
    body = ModifyTrainingQuotaRequest(
        user_id=user_id, quotas=[ModifyTrainingQuotaItem(resource=r, quota=q) for r, q in items]
    )
    return client.modify_training_quotas(ModifyTrainingQuotasRequest(body=body))


def test_quotas_are_shown_and_job_num_is_enforced(
    server: LiveServer, admin_client: Any, unique: Callable[[str], str]
) -> None:
    user = server.create_user("quota-user")
    client = server.client(user)
    shown = client.show_training_quotas(ShowTrainingQuotasRequest())
    quotas = {q.resource: (q.quota, q.used) for q in shown.quotas}
    assert quotas["job-num"] == (1000, 0)
    assert {"visual-job-num", "job-retention-enabled", "job-num-quota-notify"} <= set(quotas)

    changed = _modify(admin_client, user["user_id"], ("job-num", 1))
    assert (changed.user_id, [(q.resource, q.quota) for q in changed.quotas]) == (user["user_id"], [("job-num", 1)])
    first = client.create_training_job(job(unique("quota-a"), command="python -c pass"))
    with pytest.raises(ClientRequestException) as caught:
        client.create_training_job(job(unique("quota-b"), command="python -c pass"))
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2815")
    used = client.show_training_quotas(ShowTrainingQuotasRequest(resource="job-num")).quotas
    assert [(q.resource, q.quota, q.used) for q in used] == [("job-num", 1, 1)]
    wait_for(client, first.metadata.id)


@pytest.mark.parametrize(
    "items",
    [
        [("job-num", 0)],
        [("job-retention-enabled", 2)],
        [("no-such-resource", 1)],
        [("job-num", 5), ("job-num", 6)],
    ],
)
def test_bad_quota_changes_are_400(admin_client: Any, items: list[tuple[str, int]]) -> None:
    with pytest.raises(ClientRequestException) as caught:
        _modify(admin_client, None, *items)
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2788")


def test_only_the_main_account_changes_quotas(server: LiveServer) -> None:
    user = server.create_user("quota-peer")
    other = server.create_user("quota-other")
    client = server.client(user)
    with pytest.raises(ClientRequestException) as caught:
        _modify(client, None, ("job-num", 5))
    assert caught.value.status_code == 403
    with pytest.raises(ClientRequestException) as caught:
        client.show_training_quotas(ShowTrainingQuotasRequest(user_id=other["user_id"]))
    assert caught.value.status_code == 403
