"""The exception root of the ``services`` package and the domain errors views raise.

Views raise these; the error middleware in :mod:`services.common.app` turns them into JSON
HTTP responses shaped like the real API's (``{"errors": [{"message", "code"}]}``).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error raised on purpose by failwhale services."""

    status = 500
    code = 131  # the real API's "internal error" code
    message = "Internal error"

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.retry_after = retry_after
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400
    code = 214
    message = "Bad request"


class Unauthorized(ServiceError):
    status = 401
    code = 89
    message = "Invalid or expired token"


class Forbidden(ServiceError):
    status = 403
    code = 200
    message = "Forbidden"


class NotFound(ServiceError):
    status = 404
    code = 34
    message = "Sorry, that page does not exist"


class MethodNotAllowed(ServiceError):
    status = 405
    code = 0
    message = "Method not allowed"


class RateLimited(ServiceError):
    status = 429
    code = 88
    message = "Rate limit exceeded"


class UpstreamError(ServiceError):
    """A dependency answered with an error or could not be reached."""

    status = 502
    code = 131
    message = "Upstream error"


class OverCapacity(ServiceError):
    status = 503
    code = 130
    message = "Over capacity"


class UpstreamTimeout(ServiceError):
    status = 504
    code = 131
    message = "Upstream timed out"
