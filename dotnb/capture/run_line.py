"""The line a tracked cell ends with: ``run #4 · 1 input · 1 output · lr=0.1 · 0.8 s``."""

from __future__ import annotations

from typing import Any

__all__ = ["format_run_line", "shorten"]


# Recording slower than this is said on the run line: the cell's own time alone would
# hide it (storing 100,000 new inputs takes longer than reading them).
SAY_RECORDING_S = 1.0


def format_run_line(
    summary: dict[str, Any], overridden: dict[str, Any], replaced: dict[str, str], recording_s: float = 0.0
) -> str:
    """``run #4 · 1 input · 1 output · lr=0.1 · acc=0.93 · 0.8 s``, and ``(+2.5 s to
    record)`` when recording took longer than :data:`SAY_RECORDING_S`."""
    parts = [f"run #{summary['number']}"]
    if summary.get("name"):
        parts[0] += f" {summary['name']!r}"
    if summary["status"] != "ok":
        parts.append(summary["status"])
    n_in, n_out = summary.get("inputs", 0), summary.get("outputs", 0)
    parts.append(f"{n_in} input{'s' if n_in != 1 else ''}")
    parts.append(f"{n_out} output{'s' if n_out != 1 else ''}")
    for key, value in list((summary.get("params") or {}).items())[:4]:
        text = f"{key}={shorten(repr(value), 24)}"
        if key in overridden:
            old = replaced.get(key)
            text += f" (--param, overriding {key} = {old})" if old else " (--param)"
        parts.append(text)
    for key, value in list((summary.get("metrics") or {}).items())[:4]:
        parts.append(f"{key}={_fmt_metric(value)}")
    took = _fmt_duration(summary.get("duration_s") or 0.0)
    if recording_s > SAY_RECORDING_S:
        took += f" (+{_fmt_duration(recording_s)} to record)"
    parts.append(took)
    return " · ".join(parts)


def shorten(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
