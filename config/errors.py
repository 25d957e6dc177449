"""The one exception type for a user's mistake, and the CLI wrapper that turns it into exit code 2."""
from __future__ import annotations

import sys
from typing import Callable


class UserInputError(Exception):
    """A mistake the user can fix (bad file, bad config key, bad MIDI).

    The message is one line that names the file, the place and the fix. CLIs print it as
    ``error: <message>`` and exit with code 2 (see `run_cli`).
    """


def error_line(error: UserInputError) -> str:
    """``error: <message>`` on one line, whatever the raiser built: what a CLI prints (and the web page shows)."""
    return "error: " + " ".join(str(error).split())


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a CLI ``main`` and exit: 0 on success, 2 with one line on stderr for a `UserInputError`."""
    try:
        code = main()
    except UserInputError as error:
        print(error_line(error), file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
