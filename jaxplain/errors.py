"""User-facing errors: one clear line naming the input and the fix; the CLI exits non-zero on them."""


class JaxplainError(Exception):
    """Base class for errors caused by the user's inputs or settings, not by a bug."""


class UsageError(JaxplainError):
    """A wrong argument: unknown model or method, bad shape, dtype, range or option."""


class InputFileError(JaxplainError):
    """An input file that cannot be read: missing, unreadable, corrupt or of an unsupported kind."""


class OutputError(JaxplainError):
    """An output that cannot be written: a full disk, a read-only folder, a file of the user's in the way."""


class Interrupted(JaxplainError):
    """A run stopped by SIGINT or SIGTERM; the message says what is saved and how to resume."""

    def __init__(self, message: str, signal_number: int = 2):
        super().__init__(message)
        self.signal_number = signal_number
