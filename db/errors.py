"""Errors the storage layer reports to its callers (and the CLI prints as one line)."""

from models.errors import RnnbotError


class DatabaseConfigError(RnnbotError):
    """DATABASE_URL is malformed, names an unsupported database, or the database is unreachable."""


class InvalidInputError(RnnbotError, ValueError):
    """A value was refused at the storage boundary (wrong type, out of range, unknown status)."""


class PromptTooLongError(InvalidInputError):
    """A prompt is longer than the configured maximum."""


class NotFoundError(RnnbotError, LookupError):
    """The row a call refers to does not exist."""


class StateConflictError(RnnbotError):
    """The row is not in the state the call needs (e.g. a generation that is no longer a candidate)."""
