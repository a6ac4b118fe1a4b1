"""The model error catalogue (reference section 7)."""

from __future__ import annotations

from openarts.core.errors import ApiError


def not_found(model_id: str) -> ApiError:
    return ApiError(404, "ModelArts.3001", f"Model {model_id} does not exist.")


def already_exists(name: str, version: str) -> ApiError:
    return ApiError(409, "ModelArts.3002", f"Model {name} of version {version} already exists.")


def bad_config(message: str) -> ApiError:
    return ApiError(400, "ModelArts.3015", f"The model configuration does not meet the specification: {message}")


def bad_source(message: str) -> ApiError:
    return ApiError(400, "ModelArts.3017", f"Invalid source_location: {message}")


def required(field: str) -> ApiError:
    return ApiError(400, "ModelArts.3036", f"The required parameter {field} is missing.")


def invalid(field: str, value: object, why: str) -> ApiError:
    return ApiError(400, "ModelArts.3037", f"Parameter {field}:{value} is invalid: {why}")


def bad_restraint(installer: str, restraint: str) -> ApiError:
    code = "ModelArts.3041" if installer in ("yum", "apt-get") else "ModelArts.3040"
    return ApiError(400, code, f"The restraint {restraint} is not valid for the installer {installer}.")


def type_unsupported(model_type: str, why: str) -> ApiError:
    return ApiError(400, "ModelArts.3053", f"The model type {model_type} is not supported: {why}")


def in_use(model_id: str) -> ApiError:
    return ApiError(500, "ModelArts.3009", f"Failed to delete model, model ({model_id}) already deploy service.")
