"""Reading the progress lines a long command writes to stderr when it is not a terminal (tocsin.progress)."""

import re

_TIMING = re.compile(r" in \d+\.\d s(, \d+ \S+/s)?$")


def progress_lines(stderr: str, description: str) -> list[str]:
    """The lines of `description`'s progress, in order; the final one's time and rate (which vary from run
    to run) read " in …", so that a list compared with them says where the final line is."""
    return [_TIMING.sub(" in …", line) for line in stderr.splitlines() if line.startswith(f"{description}: ")]
