"""The service and inference error catalogue (reference sections 5 and 7)."""

from __future__ import annotations

from openarts.core.errors import ApiError


def not_found(service_id: str) -> ApiError:
    return ApiError(404, "ModelArts.3502", f"Service {service_id} does not exist.")


def already_exists(name: str) -> ApiError:
    return ApiError(409, "ModelArts.3503", f"Service {name} already exists.")


def invalid(field: str, value: object, why: str) -> ApiError:
    return ApiError(400, "ModelArts.3037", f"Parameter {field}:{value} is invalid: {why}")


def required(field: str) -> ApiError:
    return ApiError(400, "ModelArts.3610", f"The parameter {field} cannot be empty.")


def model_missing(model_id: str) -> ApiError:
    return ApiError(404, "ModelArts.3507", f"Model {model_id} does not exist.")


def model_not_published(model_id: str, status: str) -> ApiError:
    return ApiError(400, "ModelArts.3515", f"Model {model_id} is {status}: only published models can be deployed.")


def duplicate_models(model_id: str) -> ApiError:
    return ApiError(400, "ModelArts.3516", f"Model {model_id} appears more than once in the service config.")


def wrong_install_type(model_id: str, infer_type: str) -> ApiError:
    return ApiError(400, "ModelArts.3589", f"Model {model_id} cannot be deployed as a {infer_type} service.")


def not_updatable(service_id: str, status: str, what: str) -> ApiError:
    return ApiError(400, "ModelArts.3519", f"Service {service_id} is {status}: {what} is not allowed now.")


def due_time_past() -> ApiError:
    return ApiError(400, "ModelArts.3562", "The auto stop time must be in the future.")


def no_resources(why: str) -> ApiError:
    return ApiError(400, "ModelArts.3952", f"Insufficient resources for the chosen specification: {why}")


def unavailable(service_id: str) -> ApiError:
    return ApiError(400, "ModelArts.4203", f"requested service {service_id} is unavailable")


def empty_request() -> ApiError:
    return ApiError(400, "ModelArts.4202", "The request body is empty.")


def backend_refused(service_id: str) -> ApiError:
    return ApiError(503, "ModelArts.4302", f"The backend of service {service_id} refused the connection.")


def backend_failed(service_id: str) -> ApiError:
    return ApiError(500, "ModelArts.4503", f"The backend of service {service_id} failed to respond.")


def backend_timeout(service_id: str) -> ApiError:
    return ApiError(504, "ModelArts.4503", f"The backend of service {service_id} timed out.")
