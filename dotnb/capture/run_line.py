"""The line a tracked cell ends with: ``run #4 · 1 input · 1 output · lr=0.1 · 0.8 s``."""

from __future__ import annotations

from typing import Any

__all__ = ["format_run_line", "shorten"]


def format_run_line(summary: dict[str, Any], overridden: dict[str, Any], replaced: dict[str, str]) -> str:
    """``run #4 · 1 input · 1 output · lr=0.1 · acc=0.93 · 0.8 s``"""
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
    parts.append(_fmt_duration(summary.get("duration_s") or 0.0))
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
