"""Errors a user can cause and fix: bad input files, missing artifacts, bad flags.

Commands print them as one line and exit non-zero; the service maps them to 4xx/503.
"""


class RecsysError(Exception):
    """Base class for errors caused by input, not by a bug."""


class DataError(RecsysError):
    """A dataset directory or features.toml breaks the dataset contract."""


class ArtifactError(RecsysError):
    """An artifact root or version is missing, incomplete or inconsistent."""


class ConfigError(RecsysError):
    """A flag, setting or configuration value is out of range."""
