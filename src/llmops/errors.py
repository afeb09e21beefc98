"""The one exception type the CLI, the API and the UI turn into a clear message (never a traceback)."""


class LLMOpsError(Exception):
    """A user-facing error: bad input, a missing workspace, a failed run. The message says what and where."""


def located(path: object, line: int | None, field: str | None, problem: str) -> LLMOpsError:
    """An error that names the file, the line and the field, as `file:line: field: problem`."""
    where = str(path) if line is None else f"{path}:{line}"
    return LLMOpsError(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
