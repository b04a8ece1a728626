"""What a run writes to a log (stderr not a terminal): a line per stage as it happens, never wrapped."""

from __future__ import annotations

from tests.helpers import PROGRESS_LINE, adbench


def test_a_log_gets_a_line_per_stage_before_the_cell_ends(tiny_root, tmp_path):
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--data", str(tiny_root),
        "--out", str(tmp_path), "--name", "logged", "--repeats", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("done l2ae/pin/seed0: "))
    assert "ms/image" in lines[done], "the cell's line is whole, not wrapped at 80 columns"
    stages = [line for line in lines[:done] if PROGRESS_LINE.match(line)]
    text = "\n".join(stages)
    for expected in (
        "check data: started",
        "grid: 1 cells: started",
        "decode pin: started",
        "fit l2ae/pin/seed0: started, 40 to do",
        "fit l2ae/pin/seed0: 4/40 loss ",  # a tenth of the steps, with the loss
        "fit l2ae/pin/seed0: done in ",
        "score l2ae/pin/seed0: started",
        "check l2ae/pin/seed0 input sensitivity: started",
        "check l2ae/pin/seed0 input sensitivity: done in ",
        "score l2ae/pin/seed0 validation: started",
        "time l2ae/pin/seed0 latency: started, 2 to do",  # the warm-up call and one repeat
        "time l2ae/pin/seed0 latency: done in ",
    ):
        assert expected in text, (expected, text)
    assert text.index("fit l2ae/pin/seed0: started") < text.index("score l2ae/pin/seed0: started")
