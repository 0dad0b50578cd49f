"""Typed errors every engine raises. The API maps each one to an HTTP status and OpenAI error code;
engines themselves know nothing about HTTP."""


class EngineError(Exception):
    """Base class; `code` is the machine-readable OpenAI-style error code."""

    code = "engine_error"

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(EngineError):
    """The request cannot be served as asked (bad schema, impossible options)."""

    code = "invalid_request"


class ContextOverflow(InvalidRequest):
    """The prompt does not fit in the model's context window."""

    code = "context_length_exceeded"


class UnknownModel(EngineError):
    """No model with that id is hosted here."""

    code = "model_not_found"


class Overloaded(EngineError):
    """Every slot is busy and the wait queue is full; try again after `retry_after` seconds."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(EngineError):
    """The model cannot answer now: still loading, failed to load, or the queue wait timed out; another
    try may succeed after `retry_after` seconds."""

    code = "unavailable"

    def __init__(self, message: str, *, param: str | None = None, retry_after: float = 1.0):
        super().__init__(message, param=param)
        self.retry_after = retry_after


class Unreachable(Unavailable):
    """A remote instance did not answer at all (refused connection, DNS, connect timeout)."""

    code = "upstream_unreachable"


class ModelFileMissing(Unavailable):
    """A hub model is neither cached nor downloadable (offline, gated, or wrong repo/file)."""

    code = "model_file_missing"


class InsufficientMemory(EngineError):
    """A model would not fit in the memory this machine (or --memory-limit) leaves for it."""

    code = "insufficient_memory"
