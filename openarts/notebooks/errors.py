"""The notebook error catalogue (reference E.2): every one a 400 ``ModelArts.63xx`` unless noted."""

from __future__ import annotations

from openarts.core.errors import ApiError


def notebook_error(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, f"ModelArts.{code}", message)


def not_found(instance_id: str) -> ApiError:
    return notebook_error("6309", f"Instance {instance_id} does not exist.")


def bad_value(message: str) -> ApiError:
    return notebook_error("6336", message)


def required(field: str) -> ApiError:
    return notebook_error("6335", f"The required property {field} is missing.")


def invalid_payload(message: str) -> ApiError:
    return notebook_error("6400", f"Invalid payload: {message}")


def bad_characters(field: str) -> ApiError:
    return notebook_error("6334", f"The {field} contains characters that are not allowed.")


def already_running(instance_id: str) -> ApiError:
    return notebook_error("6305", f"Instance {instance_id} is already running.")


def is_starting(instance_id: str) -> ApiError:
    return notebook_error("6306", f"Instance {instance_id} is starting.")


def already_stopped(instance_id: str) -> ApiError:
    return notebook_error("6307", f"Instance {instance_id} is already stopped.")


def is_stopping(instance_id: str) -> ApiError:
    return notebook_error("6308", f"Instance {instance_id} is stopping.")


def stop_before_delete(instance_id: str) -> ApiError:
    return notebook_error("6304", f"Please stop the instance {instance_id} before deleting it.")


def not_running(instance_id: str) -> ApiError:
    return notebook_error("6327", f"Instance {instance_id} is not running.")


def busy(instance_id: str, status: str) -> ApiError:
    return notebook_error("6357", f"Instance {instance_id} is {status}: another operation is in progress.")


def not_modifiable(field: str, status: str) -> ApiError:
    return notebook_error("6347", f"The field {field} cannot be modified while the instance is {status}.")


def duration_range(low_ms: int, high_ms: int) -> ApiError:
    return notebook_error("6349", f"The duration must be between {low_ms} and {high_ms} milliseconds.")


def duration_required() -> ApiError:
    return notebook_error("6348", "The duration is mandatory for auto stop.")


def flavor_unsupported(flavor: str) -> ApiError:
    return notebook_error("6323", f"The flavor {flavor} is not supported.")


def sold_out(flavor: str, why: str) -> ApiError:
    return notebook_error("6329", f"The flavor {flavor} is sold out: {why}")


def evs_range(low: int, high: int) -> ApiError:
    return notebook_error("6331", f"The EVS capacity must be between {low} and {high} GB.")


def image_not_found(image_id: str) -> ApiError:
    return notebook_error("6797", f"Image {image_id} does not exist.")


def too_many(limit: int) -> ApiError:
    return notebook_error("6302", f"The number of instances has reached the maximum ({limit}).")


def flavor_switch(message: str) -> ApiError:
    return notebook_error("6792", message)


def image_saving_unsupported() -> ApiError:
    return notebook_error(
        "6336",
        "Saving an instance as an image is not available: it needs a container runtime, and OpenArts runs "
        "instances as local processes. Register an existing Python environment with POST /v1/{project_id}/images.",
    )
