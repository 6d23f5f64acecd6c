"""User-facing errors: one clear line naming the input and the fix; the CLI exits non-zero on them."""


class JaxplainError(Exception):
    """Base class for errors caused by the user's inputs or settings, not by a bug."""


class UsageError(JaxplainError):
    """A wrong argument: unknown model or method, bad shape, dtype, range or option."""


class InputFileError(JaxplainError):
    """An input file that cannot be read: missing, unreadable, corrupt or of an unsupported kind."""
