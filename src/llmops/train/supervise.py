"""`python -m llmops.train.supervise ROOT RUN_ID -- COMMAND…`: run one training command and record its end.

The runner starts this in a new session (process group), so a stop signal to the group reaches the
training process; the supervisor itself outlives SIGINT/SIGTERM just long enough to record the exit code
in the `runs` table, which is how a run's status survives a restart of whoever started it.
"""

import signal
import subprocess
import sys
from pathlib import Path

from llmops.train.runs import LOG_FILE, finish_run, read_run
from llmops.workspace import open_workspace


def _note_signal(signum: int, _frame: object) -> None:
    """Keep running until the child ends (handlers, unlike SIG_IGN, are reset in the child at exec)."""


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: python -m llmops.train.supervise ROOT RUN_ID -- COMMAND...\n")
        return 2
    root, run_id, command = Path(argv[0]), argv[1], argv[3:]
    signal.signal(signal.SIGINT, _note_signal)
    signal.signal(signal.SIGTERM, _note_signal)
    workspace = open_workspace(root)
    run = read_run(workspace, run_id, with_progress=False)
    with (Path(run.run_dir) / LOG_FILE).open("ab") as log:
        try:
            code: int | None = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            log.write(f"cannot start {command[0]}: {exc}\n".encode())
            code = None
    finish_run(workspace, run_id, code, "" if code is not None else f"cannot start {command[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
