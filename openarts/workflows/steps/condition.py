"""Condition steps: the AND of ``conditions``; the losing branch (``else_then_steps`` when true,
``if_then_steps`` when false) is ruled out, and the engine skips it and what only it leads to.

Operands are literals, resolved placeholders, nested conditions (``or`` takes two) or metrics: an object
with ``json_key`` and ``input_data`` naming a metrics JSON file, or a folder holding ``metrics.json``, in
object storage (usually ``$ref/consumptions/<job step>/<output>/obs_url``)."""

from __future__ import annotations

import json
from typing import Any

from openarts.core.errors import ApiError
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from openarts.workflows import steps
from openarts.workflows.steps.base import StepContext, StepProblem

OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "or")
METRICS_FILE = "metrics.json"


class EvaluationError(ValueError):
    pass


def _check(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or "type" not in condition:
        raise StepProblem(f"{where} must be a condition {{type, left, right}}")
    kind = condition["type"]
    if kind not in OPERATORS:
        raise StepProblem(f"{where}: type {kind!r} is not one of {', '.join(OPERATORS)}")
    if kind == "or":
        _check(condition.get("left"), f"{where}.left")
        _check(condition.get("right"), f"{where}.right")
        return
    for side in ("left", "right"):
        operand = condition.get(side)
        if isinstance(operand, dict) and "json_key" in operand and not operand.get("input_data"):
            raise StepProblem(f"{where}.{side}: a metric needs input_data (its metrics file) and json_key")


def _metric_path(source: Any) -> str:
    if isinstance(source, dict):
        source = source.get("obs_url") or source.get("config_file")
    if not isinstance(source, str) or not source:
        raise EvaluationError(f"metric input_data {source!r} names no file")
    return source + METRICS_FILE if source.endswith("/") else source


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class ConditionStep:
    name = "condition"
    starting_status = "running"
    cacheable = False
    polls = False

    def validate(self, step: dict[str, Any]) -> None:
        conditions = step.get("conditions")
        if not conditions:
            raise StepProblem("a condition step needs conditions")
        for i, condition in enumerate(conditions):
            _check(condition, f"conditions[{i}]")

    def start(self, ctx: StepContext) -> str:
        store = ObjectStore(ctx.services.settings)
        metrics: list[dict[str, Any]] = []
        try:
            result = all(self._evaluate(c, store, metrics) for c in ctx.resolved.get("conditions") or [])
        except EvaluationError as exc:
            return ctx.fail("ModelArts.0104", f"cannot evaluate the conditions: {exc}")
        ctx.step.conditions_execution = {"result": "true" if result else "false", "metric_list": metrics}
        losing = ctx.definition.get("else_then_steps" if result else "if_then_steps") or []
        ctx.step.rules_out = list(losing)
        return "completed"

    def poll(self, ctx: StepContext) -> str:
        return ctx.step.status

    def stop(self, ctx: StepContext) -> str:
        return "stopped"

    # --- evaluation ------------------------------------------------------------------------

    def _evaluate(self, condition: dict[str, Any], store: ObjectStore, metrics: list[dict[str, Any]]) -> bool:
        kind = condition["type"]
        if kind == "or":
            # Both sides are evaluated so that every metric read shows in metric_list.
            left = self._evaluate(condition["left"], store, metrics)
            right = self._evaluate(condition["right"], store, metrics)
            return left or right
        left = self._operand(condition.get("left"), store, metrics)
        right = self._operand(condition.get("right"), store, metrics)
        try:
            if kind == "==":
                return bool(left == right or (_number(left) == _number(right)))
            if kind == "!=":
                return not (left == right or (_number(left) == _number(right)))
            if kind == "in":
                return bool(left in right)
            a, b = _number(left), _number(right)
            return bool({">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[kind])
        except TypeError:
            raise EvaluationError(f"{left!r} {kind} {right!r} compares values of different kinds") from None

    def _operand(self, operand: Any, store: ObjectStore, metrics: list[dict[str, Any]]) -> Any:
        if not (isinstance(operand, dict) and "json_key" in operand):
            return operand
        key = str(operand["json_key"])
        path = _metric_path(operand.get("input_data"))
        try:
            document = json.loads(store.read_bytes(parse_obs_url(path)))
        except (OSError, ValueError, ApiError) as exc:
            raise EvaluationError(f"cannot read metrics file {path}: {exc}") from None
        value: Any = document
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise EvaluationError(f"metrics file {path} has no {key}")
            value = value[part]
        metrics.append({"key": key, "value": value})
        return value


steps.register(ConditionStep())
