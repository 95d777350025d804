"""One error hierarchy for the whole tool; each class maps to an exit code and says what to try next.

Exit codes: 0 success, 1 a negative answer (``NegativeAnswer``), 2 bad input (``UsageError``),
3 environment problem (``EnvironmentProblem``). Only these are ever shown to the user, as one line.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class ImagesmithError(Exception):
    """Base class. ``hint`` is the next thing to try; ``where`` names the file:line, flag or value."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def one_line(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(ImagesmithError):
    """Bad input: a flag, a value or a file the user gave us."""

    exit_code = EXIT_BAD_INPUT


class DataError(UsageError):
    """A malformed data or policy file; ``where`` is ``file:line``."""


class UnknownName(UsageError):
    """A name or version we have no row for; carries the closest known names."""

    def __init__(self, kind: str, value: str, suggestions: list[str], *, where: str | None = None) -> None:
        hint = f"closest known: {', '.join(suggestions)}" if suggestions else None
        super().__init__(f"unknown {kind} {value!r}", where=where, hint=hint)
        self.kind = kind
        self.value = value
        self.suggestions = suggestions


class EnvironmentProblem(ImagesmithError):
    """Something outside the input is missing or broken (no Docker engine, unwritable directory)."""

    exit_code = EXIT_ENVIRONMENT


class VersionSkew(EnvironmentProblem):
    """The installed imagesmith is of another release line than the team repository's ``imagesmith-version``."""


class NegativeAnswer(ImagesmithError):
    """The command ran fine and the answer is no (a build fails on a node, a check is out of date)."""

    exit_code = EXIT_NEGATIVE
