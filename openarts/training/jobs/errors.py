"""Training job errors, with the codes and ``error_solution`` of ModelArts' training v2 catalogue."""

from __future__ import annotations

from openarts.core.errors import ApiError
from openarts.training.errors import invalid_param as invalid_param  # re-exported for callers
from openarts.training.errors import training_error


def duplicate_name(name: str) -> ApiError:
    return training_error(
        "2751", "DuplicateTrainingJobName", f"a training job named {name} already exists.", "Use another name."
    )


def job_not_found(job_id: str) -> ApiError:
    return training_error("2775", "TrainingJobNotFound", f"training job {job_id} does not exist.", "Check the job id.")


def inputs_outputs(message: str) -> ApiError:
    return training_error("2753", "InputsOutputsMessageError", message, "Check the inputs and outputs of the job.")


def code_dir(message: str) -> ApiError:
    return training_error("2757", "CodeDirError", message, "Check algorithm.code_dir.")


def boot_file(message: str) -> ApiError:
    return training_error("2758", "BootFileDirError", message, "Check algorithm.boot_file: it must lie in code_dir.")


def engine_not_found(message: str) -> ApiError:
    return training_error(
        "2780", "EngineNotFound", message, "List the engines with GET /v2/{project_id}/training-job-engines."
    )


def flavor_not_found(flavor_id: str) -> ApiError:
    return training_error(
        "2781", "FlavorNotFound", f"flavor {flavor_id} does not exist.", "List the flavors with training-job-flavors."
    )


def unsupported_flavor(message: str) -> ApiError:
    return training_error("2840", "UnsupportedFlavor", message, "Choose a flavor that fits this machine.")


def several_nodes_need_ray(node_count: int) -> ApiError:
    """A job over several nodes on a server that runs jobs as its own local processes."""
    return training_error(
        "2788",
        "InvalidParam",
        f"spec.resource.node_count is {node_count}, but this server runs each job as processes on its own "
        "machine, one node; jobs on several nodes run when the server runs jobs on a Ray cluster "
        "(OPENARTS_EXECUTOR=ray).",
        "Set spec.resource.node_count to 1, or run the server with OPENARTS_EXECUTOR=ray.",
    )


def search_on_several_nodes(node_count: int) -> ApiError:
    return training_error(
        "2788",
        "InvalidParam",
        f"spec.resource.node_count is {node_count}, but a hyperparameter search (algorithm.policies.auto_search) "
        "runs each trial as one process on one node.",
        "Set spec.resource.node_count to 1 for a search.",
    )


def unsupported_filter(key: str) -> ApiError:
    return training_error(
        "2789", "UnsupportedFilterBy", f"cannot filter by {key}.", "Filter by name, phase, create_time, ..."
    )


def unsupported_operator(key: str, operator: str) -> ApiError:
    return training_error(
        "2808", "UnsupportedConditionOperator", f"{key} does not support {operator}.", "Check the operator."
    )


def unsupported_sort(key: str) -> ApiError:
    return training_error(
        "2790", "UnsupportedSortBy", f"cannot sort by {key}.", "Sort by create_time, name or duration."
    )


def unsupported_action(action: str) -> ApiError:
    return training_error("2812", "UnsupportedActionType", f"action {action} is not supported.", 'Use "terminate".')


def not_allowed_to_terminate(phase: str) -> ApiError:
    return ApiError(
        409,
        "ModelArts.2796",
        f"NotAllowedToTerminate: a job in phase {phase} cannot be stopped.",
        solution="Only Creating, Pending and Running jobs can be stopped.",
    )
