"""Leaderboard charts (plotly): one bar chart per metric, quality against runtime.

Both take the table of `evaluation.leaderboard.summarize` (its `attrs` say which way each
metric is better) and return plotly figures; nothing here reads the store.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

_ARROW = {True: "lower is better", False: "higher is better"}


def _label(table: pd.DataFrame) -> pd.Series:
    """Model names, with dataset and degradation when the table mixes several."""
    if table[["dataset", "degradation"]].drop_duplicates().shape[0] <= 1:
        return table["model"].astype(str)
    return table["model"] + " · " + table["dataset"] + " · " + table["degradation"]


def _lower_better(table: pd.DataFrame) -> dict[str, bool]:
    return dict(table.attrs.get("lower_better", {}))


def metric_bars(table: pd.DataFrame) -> dict[str, go.Figure]:
    """One bar chart per metric column, best first."""
    figures = {}
    labels = _label(table)
    for metric, lower in _lower_better(table).items():
        if metric not in table:
            continue
        order = table[metric].sort_values(ascending=lower, na_position="last").index
        figure = go.Figure(
            go.Bar(
                x=labels[order],
                y=table.loc[order, metric],
                text=table.loc[order, metric].map(lambda v: f"{v:.4g}"),
                textposition="auto",
                name=metric,
            )
        )
        figure.update_layout(
            title=f"{metric} ({_ARROW[lower]})",
            xaxis_title="model",
            yaxis_title=metric,
            margin={"t": 50, "l": 50, "r": 20, "b": 40},
        )
        figures[metric] = figure
    return figures


def quality_vs_time(table: pd.DataFrame, metric: str | None = None) -> go.Figure:
    """Mean runtime per image (log x axis) against a metric (default: the primary)."""
    metric = metric or table.attrs.get("primary")
    lower = _lower_better(table).get(metric or "", False)
    figure = go.Figure()
    if metric and metric in table and not table.empty:
        figure.add_trace(
            go.Scatter(
                x=table["runtime_s"].clip(lower=1e-4),
                y=table[metric],
                mode="markers+text",
                text=_label(table),
                textposition="top center",
                marker={"size": 12},
                name=metric,
            )
        )
    figure.update_layout(
        title=f"{metric} vs runtime ({_ARROW[lower]})" if metric else "No results yet",
        xaxis={"title": "seconds per image", "type": "log"},
        yaxis_title=metric or "",
        margin={"t": 50, "l": 50, "r": 20, "b": 40},
    )
    return figure


def all_figures(table: pd.DataFrame) -> dict[str, Any]:
    """Every chart of a leaderboard by a file-safe name: ``bar_<metric>``, ``quality_vs_time``."""
    figures: dict[str, Any] = {f"bar_{m}": f for m, f in metric_bars(table).items()}
    figures["quality_vs_time"] = quality_vs_time(table)
    return figures


def bars_overview(table: pd.DataFrame) -> go.Figure:
    """Every metric's bar chart side by side in one figure (one subplot per metric)."""
    from plotly.subplots import make_subplots

    bars = metric_bars(table)
    if not bars:
        return go.Figure().update_layout(title="No results yet")
    figure = make_subplots(
        rows=1, cols=len(bars), subplot_titles=[f.layout.title.text for f in bars.values()]
    )
    for column, bar in enumerate(bars.values(), start=1):
        for trace in bar.data:
            figure.add_trace(trace, row=1, col=column)
    figure.update_layout(showlegend=False, margin={"t": 60, "l": 40, "r": 20, "b": 40})
    return figure
