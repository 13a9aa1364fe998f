"""Exceptions raised by hearth.

Every failure of the C library arrives as a subclass of :class:`hearth.Error`,
which carries the library's status code (``.code``, a :class:`StatusCode`, the
values of ``hearth_status_code`` / ``absl::StatusCode``) and its message
(``.message``, naming the input that was wrong).

The common codes also derive from the matching built-in exception, so code
that does not know hearth can still catch them naturally::

    try:
        hearth.Model("missing.gguf")
    except FileNotFoundError as e:      # hearth.NotFoundError
        print(e.code, e.message)
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Tuple, Type


class StatusCode(enum.IntEnum):
    """``hearth_status_code``: the codes mirror ``absl::StatusCode``."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Error(Exception):
    """A hearth call failed.

    Attributes:
        code: the status code (a :class:`StatusCode`; compare with ``==`` and
            keep a default branch, as new codes may appear).
        message: the library's message, which names the bad input.
    """

    code: StatusCode
    message: str
    #: The code a subclass stands for; :class:`Error` itself takes any.
    _status: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is None:
            code = self._status
        try:
            self.code = StatusCode(code)
        except ValueError:
            self.code = StatusCode.UNKNOWN
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name})"

    def __reduce__(self) -> Tuple[Any, Tuple[str, int]]:  # picklable (multiprocessing)
        return (type(self), (self.message, int(self.code)))


class CancelledError(Error):
    """The operation was cancelled."""

    _status = StatusCode.CANCELLED


class UnknownError(Error):
    """An error the library could not classify."""

    _status = StatusCode.UNKNOWN


class InvalidArgumentError(Error, ValueError):
    """An argument was invalid: a bad parameter, a malformed file, a token id
    out of range, a prompt longer than the context."""

    _status = StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(Error, TimeoutError):
    """A deadline passed before the operation finished."""

    _status = StatusCode.DEADLINE_EXCEEDED


class NotFoundError(Error, FileNotFoundError):
    """A file, device or key does not exist."""

    _status = StatusCode.NOT_FOUND


class AlreadyExistsError(Error, FileExistsError):
    """What was to be created exists already."""

    _status = StatusCode.ALREADY_EXISTS


class PermissionDeniedError(Error, PermissionError):
    """The caller may not do this (e.g. a file that cannot be read)."""

    _status = StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(Error, MemoryError):
    """Out of memory, or a buffer or context too small."""

    _status = StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(Error):
    """The object is not in a state for this call (e.g. logits before anything
    was fed, a session used while a stream over it is still open, a closed
    session)."""

    _status = StatusCode.FAILED_PRECONDITION


class AbortedError(Error):
    """The operation was aborted."""

    _status = StatusCode.ABORTED


class OutOfRangeError(Error, IndexError):
    """An index or position past the end of something."""

    _status = StatusCode.OUT_OF_RANGE


class UnimplementedError(Error, NotImplementedError):
    """The model, device or operation is not supported by this build."""

    _status = StatusCode.UNIMPLEMENTED


class InternalError(Error):
    """A bug in hearth or a plugin; please report it with the message."""

    _status = StatusCode.INTERNAL


class UnavailableError(Error):
    """A device or service is not available right now."""

    _status = StatusCode.UNAVAILABLE


class DataLossError(Error):
    """Data is corrupt or truncated (e.g. a damaged model file)."""

    _status = StatusCode.DATA_LOSS


class UnauthenticatedError(Error):
    """Missing or bad credentials."""

    _status = StatusCode.UNAUTHENTICATED


_BY_CODE: Dict[int, Type[Error]] = {
    int(cls._status): cls
    for cls in (
        CancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
    )
}


def _from_status(code: int, message: str) -> Error:
    """The exception for a C error (used by the extension module)."""
    cls = _BY_CODE.get(code, Error)
    return cls(message, code)


__all__ = [
    "StatusCode",
    "Error",
    "CancelledError",
    "UnknownError",
    "InvalidArgumentError",
    "DeadlineExceededError",
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "AbortedError",
    "OutOfRangeError",
    "UnimplementedError",
    "InternalError",
    "UnavailableError",
    "DataLossError",
    "UnauthenticatedError",
]
