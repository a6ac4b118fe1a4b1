"""The image errors, from the notebook (DevEnviron) part of ModelArts' catalogue: all are HTTP 400."""

from __future__ import annotations

from openarts.core.errors import ApiError

# Validation failures of image routes (bad query values, wrong JSON types): "bad property value".
VALIDATION_CODE = "ModelArts.6336"


def image_not_found(image_id: str) -> ApiError:
    return ApiError(400, "ModelArts.6797", f"Image {image_id} does not exist.")


def group_not_found(group_id: str) -> ApiError:
    return ApiError(400, "ModelArts.6797", f"Image group {group_id} does not exist.")


def missing(field: str) -> ApiError:
    return ApiError(400, "ModelArts.6335", f"The required property {field} is missing.")


def bad_value(message: str) -> ApiError:
    return ApiError(400, VALIDATION_CODE, message)


def unsupported_sort(field: str) -> ApiError:
    return ApiError(
        400, "ModelArts.6303", f"Images cannot be sorted by {field}: sort by create_at, update_at, name or tag."
    )


def built_in_refused(what: str, action: str) -> ApiError:
    # ModelArts has no code of its own for this; "bad property value" names the id the caller gave.
    return ApiError(400, VALIDATION_CODE, f"{what} is a built-in image and cannot be {action}.")


def image_in_use(image_id: str) -> ApiError:
    # 6347: the image's state (in use) does not allow the change; the message says what to do.
    return ApiError(
        400,
        "ModelArts.6347",
        f"Image {image_id} is in use by a notebook instance; delete the instances that use it first.",
    )
