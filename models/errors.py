"""Errors that carry a message meant for the user (the CLI prints them as one line)."""


class RnnbotError(Exception):
    """Base class for errors caused by bad input, files or configuration, not by a bug."""


class CheckpointError(RnnbotError):
    """A checkpoint is missing, corrupt, or not an rnnbot checkpoint."""


class SamplingError(RnnbotError, ValueError):
    """Sampling parameters out of range (temperature, length, top-k, top-p)."""
