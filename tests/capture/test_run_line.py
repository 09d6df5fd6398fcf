"""The line a tracked cell ends with."""

from __future__ import annotations

from dotnb.capture.run_line import SAY_RECORDING_S, format_run_line


def summary(**fields: object) -> dict[str, object]:
    return {"number": 4, "name": None, "status": "ok", "inputs": 100000, "outputs": 1,
            "params": {"lr": 0.1}, "metrics": {"acc": 0.93}, "duration_s": 0.8, **fields}  # fmt: skip


def test_the_line_says_what_the_run_holds_and_how_long_the_cell_took() -> None:
    assert (
        format_run_line(summary(), {}, {}) == "run #4 · 100000 inputs · 1 output · lr=0.1 · acc=0.93 · 800 ms"
    )


def test_slow_recording_is_said_apart_from_the_cells_own_time() -> None:
    assert format_run_line(summary(), {}, {}, SAY_RECORDING_S / 2).endswith(" · 800 ms")
    assert format_run_line(summary(), {}, {}, 12.5).endswith(" · 800 ms (+12.5 s to record)")
    assert format_run_line(summary(duration_s=75.0), {}, {}, 90.0).endswith(
        " · 1 min 15 s (+1 min 30 s to record)"
    )
