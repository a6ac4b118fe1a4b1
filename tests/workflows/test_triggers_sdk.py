"""Schedules, subscriptions, service packages and service auth through the official SDK, with the seed's
bodies (reference D.5-D.7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkflowPurchasePoolRequest,
    CreateWorkflowScheduleRequest,
    CreateWorkflowServiceAuthRequest,
    CreateWorkflowSubscriptionsRequest,
    DeleteWorkflowScheduleIdRequest,
    DeleteWorkflowSubscriptionRequest,
    ShowWorkflowScheduleListRequest,
    ShowWorkflowScheduleRequest,
    ShowWorkflowSubscriptionRequest,
    SkuInfo,
    Subscription,
    UpdateWorkflowScheduleRequest,
    UpdateWorkflowSubscriptionRequest,
    WorkflowConsume,
    WorkflowMainServiceAuthReq,
    WorkflowPoolOrder,
    WorkflowSchedule,
    WorkflowSchedulePolicies,
    WorkflowScheduleUpdate,
    WorkflowServicePackage,
)

from tests.conftest import TEST_TOPIC
from tests.workflows.workflow_support import condition, create


def _workflow(client: Any, unique: Callable[[str], str]) -> str:
    workflow_id: str = create(client, {"name": unique("triggered"), "steps": [condition("check", 1, 1)]}).workflow_id
    return workflow_id


def test_the_seed_schedule_lives_its_life(admin_client: Any, unique: Callable[[str], str]) -> None:
    workflow_id = _workflow(admin_client, unique)
    seed = WorkflowSchedule(
        type="time",
        action="run",
        content={"cron": "0 0 0 * * Thu", "method": "fixed"},
        policies=WorkflowSchedulePolicies(on_failure="retry", on_running="cancel"),
    )
    created = admin_client.create_workflow_schedule(CreateWorkflowScheduleRequest(workflow_id=workflow_id, body=seed))
    assert created.type == "time" and created.action == "run" and created.enable is True
    assert created.content == {"cron": "0 0 0 * * Thu", "method": "fixed"}
    assert created.policies.on_failure == "retry" and created.policies.on_running == "cancel"
    assert created.workflow_id == workflow_id and created.uuid and created.user_id and "T" in created.created_at
    shown = admin_client.show_workflow_schedule(
        ShowWorkflowScheduleRequest(workflow_id=workflow_id, schedule_id=created.uuid)
    )
    assert shown.uuid == created.uuid
    updated = admin_client.update_workflow_schedule(
        UpdateWorkflowScheduleRequest(
            workflow_id=workflow_id,
            schedule_id=created.uuid,
            body=WorkflowScheduleUpdate(content={"cron": "0 30 6 * * Mon-Fri", "method": "fixed"}, enable=False),
        )
    )
    assert updated.enable is False and updated.content["cron"] == "0 30 6 * * Mon-Fri"
    listed = admin_client.show_workflow_schedule_list(ShowWorkflowScheduleListRequest(workflow_id=workflow_id))
    assert [s.uuid for s in listed.schedules] == [created.uuid]
    admin_client.delete_workflow_schedule_id(
        DeleteWorkflowScheduleIdRequest(workflow_id=workflow_id, schedule_id=created.uuid)
    )
    with pytest.raises(ClientRequestException) as gone:
        admin_client.show_workflow_schedule(
            ShowWorkflowScheduleRequest(workflow_id=workflow_id, schedule_id=created.uuid)
        )
    assert gone.value.status_code == 404


def test_subscriptions_crud(admin_client: Any, unique: Callable[[str], str]) -> None:
    workflow_id = _workflow(admin_client, unique)
    body = Subscription(topic_urns=[TEST_TOPIC], entity="238947895793875835893490", events=["*:failed,completed"])
    created = admin_client.create_workflow_subscriptions(
        CreateWorkflowSubscriptionsRequest(workflow_id=workflow_id, body=body)
    )
    assert created.subscription_id and created.events == ["*:failed,completed"]
    updated = admin_client.update_workflow_subscription(
        UpdateWorkflowSubscriptionRequest(
            workflow_id=workflow_id,
            subscription_id=created.subscription_id,
            body=Subscription(topic_urns=[TEST_TOPIC], entity="e", events=["check:completed"]),
        )
    )
    assert updated.events == ["check:completed"]
    shown = admin_client.show_workflow_subscription(
        ShowWorkflowSubscriptionRequest(workflow_id=workflow_id, subscription_id=created.subscription_id)
    )
    assert shown.entity == "e"
    with pytest.raises(ClientRequestException) as refused:
        admin_client.create_workflow_subscriptions(
            CreateWorkflowSubscriptionsRequest(
                workflow_id=workflow_id, body=Subscription(topic_urns=[TEST_TOPIC], events=["nostep:completed"])
            )
        )
    assert refused.value.status_code == 400 and "nostep" in refused.value.error_msg
    admin_client.delete_workflow_subscription(
        DeleteWorkflowSubscriptionRequest(workflow_id=workflow_id, subscription_id=created.subscription_id)
    )


def test_the_seed_package_and_service_auth(admin_client: Any, unique: Callable[[str], str]) -> None:
    workflow_id = _workflow(admin_client, unique)
    seed = WorkflowServicePackage(
        pool_id="pool-9ad2-04f258c84780d5a52f3bc00dc15aa5e7",
        order=WorkflowPoolOrder(
            id="CS2210201956MBE5Z",
            sku=SkuInfo(code="modelarts.dplan.workflow", period="day", queries_limit=1000, price=10),
            sku_count=1,
        ),
        service_id=f"svc-{workflow_id}",
    )
    package = admin_client.create_workflow_purchase_pool(
        CreateWorkflowPurchasePoolRequest(workflow_id=workflow_id, body=seed)
    )
    assert package.status == "available" and package.consume_limit == 1000 and package.package_id
    assert package.order.sku.code == "modelarts.dplan.workflow"
    auth = admin_client.create_workflow_service_auth(
        CreateWorkflowServiceAuthRequest(
            body=WorkflowMainServiceAuthReq(
                main_service_id=f"svc-{workflow_id}",
                content_id=workflow_id,
                consume=WorkflowConsume(period="day", value=1),
            )
        )
    )
    assert auth.result == "true"
