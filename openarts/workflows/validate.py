"""What a workflow definition must satisfy, checked on create and update. Each failure is a 400 naming
the step or field: names in the documented character sets, unique step names, known step types and
dependencies, no cycles, branches naming steps of the graph, every placeholder naming something that
exists (an upstream step's output for consumptions), parameter types and enums."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from openarts.core.errors import ApiError
from openarts.workflows import refs, steps
from openarts.workflows.errors import invalid
from openarts.workflows.steps.base import StepProblem

# 1-64 characters: Chinese or English letters, digits, spaces, "_" and "-", starting with a letter.
NAME = re.compile(r"[A-Za-z\u4e00-\u9fa5][A-Za-z0-9\u4e00-\u9fa5 _-]{0,63}")
PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float)}
DATA_TYPES = ("dataset", "obs", "swr", "model", "label_task", "service", "image")
REQUIREMENT_TYPES = ("dataset", "obs", "swr", "model_list", "label_task", "service")
STEP_FIELDS = ("inputs", "outputs", "properties", "conditions")


def check_name(value: str, what: str) -> None:
    if not NAME.fullmatch(value):
        raise invalid(
            f"{what} {value!r} must be 1-64 letters (Chinese or English), digits, spaces, '_' or '-', "
            "starting with a letter."
        )


def value_fits(value: Any, kind: str) -> bool:
    allowed = PARAMETER_TYPES[kind]
    return isinstance(value, allowed) and not (kind in ("int", "float") and isinstance(value, bool))


def check_parameter_value(parameter: dict[str, Any], value: Any, what: str) -> None:
    kind = parameter["type"]
    if not value_fits(value, kind):
        raise invalid(f"{what} of parameter {parameter['name']} must be a {kind}, got {value!r}.")
    enum = parameter.get("enum")
    if enum and value not in enum:
        raise invalid(f"{what} of parameter {parameter['name']} must be one of {enum}, got {value!r}.")


def _parameters(parameters: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for parameter in parameters:
        name = parameter["name"]
        if not PARAMETER_NAME.fullmatch(name):
            raise invalid(f"parameter name {name!r} must match [A-Za-z][A-Za-z0-9_-]* (1-64 characters).")
        if name in seen:
            raise invalid(f"parameter {name} is defined twice.")
        seen.add(name)
        if parameter["type"] not in PARAMETER_TYPES:
            raise invalid(f"parameter {name}: type must be one of {', '.join(PARAMETER_TYPES)}.")
        for option in parameter.get("enum") or []:
            check_parameter_value(parameter, option, "each enum value")
        for field in ("default", "value"):
            if parameter.get(field) is not None:
                check_parameter_value(parameter, parameter[field], field)


def _data(items: list[dict[str, Any]], what: str, types: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for item in items:
        if not item["name"] or item["name"] in seen:
            raise invalid(f"{what} {item['name']!r} is empty or defined twice.")
        seen.add(item["name"])
        if item["type"] not in types:
            raise invalid(f"{what} {item['name']}: type must be one of {', '.join(types)}.")


def edges(definition: dict[str, Any]) -> dict[str, list[str]]:
    """Each step's upstream steps: its depend_steps, and the condition whose branch names it."""
    upstream: dict[str, list[str]] = {
        step["name"]: list(step.get("depend_steps") or []) for step in definition["steps"]
    }
    for step in definition["steps"]:
        for branch in ("if_then_steps", "else_then_steps"):
            for name in step.get(branch) or []:
                if name in upstream and step["name"] not in upstream[name]:
                    upstream[name].append(step["name"])
    return upstream


def topological(upstream: dict[str, list[str]]) -> list[str]:
    """Steps in an order where each comes after its upstream steps; raises on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    for root in upstream:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            name, index = stack[-1]
            parents = upstream[name]
            if index < len(parents):
                stack[-1] = (name, index + 1)
                parent = parents[index]
                if state.get(parent) == 1:
                    raise invalid(f"steps {parent} and {name} depend on each other (a cycle).")
                if not state.get(parent):
                    state[parent] = 1
                    stack.append((parent, 0))
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    return order


def ancestors(upstream: dict[str, list[str]], name: str) -> set[str]:
    found: set[str] = set()
    todo = list(upstream.get(name, []))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(upstream.get(current, []))
    return found


def descendants(upstream: dict[str, list[str]], names: Iterable[str]) -> set[str]:
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, parents in upstream.items():
        for parent in parents:
            downstream.setdefault(parent, []).append(name)
    found: set[str] = set()
    todo = list(names)
    while todo:
        current = todo.pop()
        for child in downstream.get(current, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _check_refs(
    where: str,
    obj: Any,
    definition: dict[str, Any],
    outputs: dict[str, set[str]],
    upstream_of: set[str] | None,
) -> None:
    known = {
        "parameters": {p["name"] for p in definition["parameters"]},
        "data": {d["name"] for d in definition["data"]},
        "data_requirements": {d["name"] for d in definition["data_requirements"]},
    }
    try:
        found = list(refs.find(obj))
    except refs.RefError as exc:
        raise invalid(f"{where}: {exc}") from None
    for ref in found:
        if ref.kind != "consumptions":
            if ref.name not in known[ref.kind]:
                raise invalid(f"{where}: {ref.text} names no {ref.kind.replace('_', ' ')[:-1]} of the workflow.")
            continue
        if ref.name not in outputs:
            raise invalid(f"{where}: {ref.text} names no step of the workflow.")
        if upstream_of is not None and ref.name not in upstream_of:
            raise invalid(f"{where}: {ref.text} names step {ref.name}, which does not run before it.")
        if ref.output not in outputs[ref.name]:
            raise invalid(f"{where}: step {ref.name} has no output {ref.output}.")


def _used_steps(definition: dict[str, Any]) -> None:
    """Fill ``used_steps`` of parameters, data and data requirements from the placeholders, when absent."""
    used: dict[tuple[str, str], list[str]] = {}
    for step in definition["steps"]:
        for ref in refs.find([step.get(field) for field in STEP_FIELDS]):
            users = used.setdefault((ref.kind, ref.name), [])
            if step["name"] not in users:
                users.append(step["name"])
    for kind in ("parameters", "data", "data_requirements"):
        for item in definition[kind]:
            if not item.get("used_steps"):
                item["used_steps"] = used.get((kind, item["name"]), [])


def check(definition: dict[str, Any]) -> None:
    """Validate a whole definition (dicts as ``schemas.WorkflowIn`` dumps them); fills ``used_steps``."""
    check_name(definition["name"], "workflow name")
    _parameters(definition["parameters"])
    _data(definition["data"], "data", DATA_TYPES)
    _data(definition["data_requirements"], "data requirement", REQUIREMENT_TYPES)
    names: set[str] = set()
    for step in definition["steps"]:
        check_name(step["name"], "step name")
        if step["name"] in names:
            raise invalid(f"step name {step['name']} is used twice.")
        names.add(step["name"])
    outputs: dict[str, set[str]] = {}
    for step in definition["steps"]:
        name = step["name"]
        kind = steps.get(step["type"])
        if kind is None:
            raise invalid(f"step {name}: type {step['type']!r} is not one of {', '.join(sorted(steps.STEP_TYPES))}.")
        for dependency in step.get("depend_steps") or []:
            if dependency not in names or dependency == name:
                raise invalid(f"step {name}: depend_steps names {dependency!r}, which is not another step.")
        for branch in ("if_then_steps", "else_then_steps"):
            for target in step.get(branch) or []:
                if target not in names or target == name:
                    raise invalid(f"step {name}: {branch} names {target!r}, which is not another step.")
        if (step.get("if_then_steps") or step.get("else_then_steps")) and step["type"] != "condition":
            raise invalid(f"step {name}: only condition steps have if_then_steps and else_then_steps.")
        minutes = (step.get("policy") or {}).get("max_execution_minutes")
        if minutes is not None and not (minutes.isdigit() and int(minutes) > 0):
            raise invalid(f"step {name}: policy.max_execution_minutes must be a positive whole number.")
        try:
            kind.validate(step)
        except StepProblem as exc:
            raise invalid(f"step {name}: {exc}") from None
        seen_outputs = [output["name"] for output in step.get("outputs") or []]
        if len(set(seen_outputs)) != len(seen_outputs):
            raise invalid(f"step {name}: two outputs have the same name.")
        outputs[name] = set(seen_outputs)
    upstream = edges(definition)
    topological(upstream)
    for step in definition["steps"]:
        above = ancestors(upstream, step["name"])
        for field in STEP_FIELDS:
            _check_refs(f"step {step['name']} {field}", step.get(field), definition, outputs, above)
    for section in ("parameters", "data", "data_requirements"):
        for item in definition[section]:
            _check_refs(f"{section} {item['name']}", item, definition, outputs, None)
            # Informational: steps an update removed drop out rather than failing the update.
            if item.get("used_steps"):
                item["used_steps"] = [used for used in item["used_steps"] if used in names]
    for graph in definition.get("sub_graphs") or []:
        for name in graph.get("steps") or []:
            if name not in names:
                raise invalid(f"sub_graph {graph['name']} names {name!r}, which is not a step.")
    for scene in (definition.get("policy") or {}).get("scenes") or []:
        for name in scene.get("steps") or []:
            if name not in names:
                raise invalid(f"scene {scene.get('id') or scene.get('name')} names {name!r}, which is not a step.")
    _used_steps(definition)


__all__ = ["ApiError", "ancestors", "check", "descendants", "edges", "topological"]
