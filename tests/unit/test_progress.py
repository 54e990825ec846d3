"""tocsin.progress: a few plain lines when stderr is not a terminal (CI, pipes, tests), a rich bar when it
is one, and never a byte on stdout."""

import io
import re

import pytest

from tocsin.progress import progress

FINAL = re.compile(r"^(?P<head>.+: \d+/\d+ \(\d+%\)) in \d+\.\d s(, \d+ \w+/s)?$")


def run(total: int, steps: list[int], **kw) -> list[str]:
    out = io.StringIO()
    with progress(total, "zones district", "zone", file=out, **kw) as advance:
        for n in steps:
            advance(n)
    return out.getvalue().splitlines()


def head(line: str) -> str:
    """The final line without its time and rate, which vary from run to run."""
    m = FINAL.match(line)
    assert m, f"{line!r} is not a final line"
    return m["head"]


def test_a_line_at_the_start_at_every_tenth_and_at_the_end():
    lines = run(1200, [120] * 10)
    assert lines[:-1] == [f"zones district: {n}/1200 ({n // 12}%)" for n in range(0, 1200, 120)]
    assert head(lines[-1]) == "zones district: 1200/1200 (100%)"


def test_the_final_line_has_a_rate_with_its_unit():
    import time

    out = io.StringIO()
    with progress(400, "outages", "outage", file=out) as advance:
        time.sleep(0.06)  # a rate is given once the block took measurable time
        advance(400)
    assert re.search(r", \d+ outage/s$", out.getvalue().splitlines()[-1]), out.getvalue()


@pytest.mark.parametrize("total, steps, expected", [
    # Chunks larger than a tenth: one line per chunk that crosses one, with the real count.
    (1000, [250, 250, 250, 250], ["0/1000 (0%)", "250/1000 (25%)", "500/1000 (50%)", "750/1000 (75%)"]),
    # A single chunk of everything: the start, then only the final line (no 100% line twice).
    (262, [262], ["0/262 (0%)"]),
    # Row by row: one line per tenth, not one per row.
    (200, [1] * 200, [f"{n}/200 ({n // 2}%)" for n in range(0, 200, 20)]),
])
def test_lines_follow_the_count(total, steps, expected):
    lines = run(total, steps)
    assert lines[:-1] == [f"zones district: {e}" for e in expected]
    assert head(lines[-1]) == f"zones district: {total}/{total} (100%)"


@pytest.mark.parametrize("total", [0, 5, 199])
def test_a_tiny_total_writes_only_the_final_line(total):
    lines = run(total, [1] * total)
    assert len(lines) == 1
    assert head(lines[0]) == f"zones district: {total}/{total} (100%)"


def test_the_final_line_tells_the_count_reached_not_the_total():
    lines = run(1000, [300, 300, 300])
    assert head(lines[-1]) == "zones district: 900/1000 (90%)"


def test_an_error_leaves_no_final_line():
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress(1000, "outages", "outage", file=out) as advance:
        advance(500)
        raise RuntimeError("the database went away")
    assert out.getvalue().splitlines() == ["outages: 0/1000 (0%)", "outages: 500/1000 (50%)"]


def test_everything_goes_to_stderr_and_nothing_to_stdout(capsys):
    with progress(1000, "replay", "post") as advance:  # no file: the command's stderr
        for _ in range(10):
            advance(100)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[0] == "replay: 0/1000 (0%)"
    assert head(captured.err.splitlines()[-1]) == "replay: 1000/1000 (100%)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_not_lines(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Terminal()
    with progress(1000, "outages", "outage", file=out) as advance:
        for _ in range(10):
            advance(100)
    text = out.getvalue()
    assert "\x1b[" in text and "━" in text  # drawn with control codes, as a bar
    assert "1000/1000" in text and "100%" in text
    assert "outages: 0/1000 (0%)" not in text and "(100%) in" not in text


def test_a_dumb_terminal_gets_lines(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    out = Terminal()
    with progress(1000, "outages", "outage", file=out) as advance:
        advance(1000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "outages: 0/1000 (0%)" and head(lines[-1]) == "outages: 1000/1000 (100%)"


def test_a_tiny_total_on_a_terminal_is_one_plain_line(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Terminal()
    with progress(3, "zones borough", "zone", file=out) as advance:
        advance(3)
    assert [head(line) for line in out.getvalue().splitlines()] == ["zones borough: 3/3 (100%)"]
