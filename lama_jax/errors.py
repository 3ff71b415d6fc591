"""The project's error types for bad input (files, settings, data), as opposed to bugs.

Every error the project raises because of what a user gave it derives from `LamaJaxError`
(and from the built-in type its callers expect, such as `ValueError`); the command-line tools
print these on one line and let every other exception show its traceback. Each module defines
its own subclasses where it names a kind of input (`ImageError`, `CheckpointError`, ...).
"""


class LamaJaxError(Exception):
    """Base of the errors for bad input; the message names the input and the problem."""


class ConfigError(LamaJaxError, ValueError):
    """A setting that cannot be used (unknown key, wrong type, impossible value)."""


class InputNotFoundError(LamaJaxError, FileNotFoundError):
    """A file or folder named by the user that does not exist."""
