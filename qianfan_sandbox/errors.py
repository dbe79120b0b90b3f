"""The two kinds of failure the sandbox knows about.

`SandboxError` is for the operator (the sandbox itself cannot run); `ApiError` is for the
client (Qianfan would have answered this request with an error). Keeping them apart stops an
operator problem from ever being dressed up as an API answer, and vice versa.
"""

from __future__ import annotations


class SandboxError(Exception):
    """The sandbox cannot use its database or its port; the message is one line naming which."""


class ApiError(Exception):
    """An error answer in Qianfan's shape: HTTP status, `code` and `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def inappropriate_json(field: str, expected: str) -> ApiError:
    """A required field is missing or has the wrong JSON type: Baidu's `InappropriateJSON`."""
    return ApiError(400, "InappropriateJSON", f"{field} is required and must be {expected}")


def invalid_parameter(field: str, problem: str) -> ApiError:
    """A field has the right type but a value Qianfan refuses; the message names the field."""
    return ApiError(400, "InvalidParameter", f"{field}: {problem}")


def resource_not_found(instance_id: str) -> ApiError:
    """The instance id is not one this account ever had."""
    return ApiError(404, "ResourceNotFound", f"instanceId {instance_id!r} does not exist")


def invalid_instance_status(instance_id: str, status: str) -> ApiError:
    """The instance exists but its state forbids the change (stopped, released, expired)."""
    return ApiError(400, "InvalidInstanceStatus", f"instance {instance_id!r} is {status} and cannot be changed")
