"""The report's figures (matplotlib, written as PNG by the context)."""

from __future__ import annotations

import numpy as np

# The resolution the context writes figures at (`save_plot`).
DPI = 90


def _subplots(rows: int = 1, cols: int = 1, figsize=(6.4, 4.8), **kwargs):
    """A figure on Matplotlib's Agg canvas, outside pyplot (files only: the doctor runs on
    headless machines). It is made at the resolution it is written at, so that laying it out
    and writing it measure its text once, at one size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, **kwargs)


def _grid(n: int, width: float = 3.2, height: float = 2.6):
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = _subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


# Which observation dims lie in the table plane, in the order we prefer to draw them.
PLANE_KEYS = (("object_state", "object"), ("goal", "goal"), ("robot_state", "hand"))


def plot_initial_states(ctx, train: dict[str, np.ndarray], evaluation: dict[str, np.ndarray] | None,
                        name: str) -> str:
    keys = [(k, label) for k, label in PLANE_KEYS if k in train and train[k].shape[1] >= 2]
    if not keys:
        k = sorted(train)[0]
        keys = [(k, k)]
    fig, axes = _grid(len(keys), 3.6, 3.4)
    for ax, (k, label) in zip(axes, keys):
        ax.scatter(train[k][:, 0], train[k][:, 1], s=18, label=f"demos ({len(train[k])})", alpha=0.8)
        if evaluation is not None and k in evaluation:
            ax.scatter(evaluation[k][:, 0], evaluation[k][:, 1], s=18, marker="x",
                       label=f"eval ({len(evaluation[k])})", alpha=0.8)
        ax.set_title(f"initial {label} position")
        ax.set_xlabel(f"{k}[0]")
        ax.set_ylabel(f"{k}[1]")
        ax.legend(fontsize=7)
        ax.set_aspect("equal", adjustable="datalim")
    return ctx.save_plot(name, fig)


# Histograms as one filled outline per series: the picture 40 edgeless bars make, drawn in about
# half the time (a report draws several of these per check).
HIST = {"bins": 40, "histtype": "stepfilled"}


def plot_action_histograms(ctx, actions: np.ndarray, predicted: np.ndarray | None, name: str) -> str:
    fig, axes = _grid(actions.shape[1])
    for d, ax in enumerate(axes):
        ax.hist(actions[:, d], alpha=0.6, label="data", **HIST)
        if predicted is not None:
            ax.hist(predicted[:, d], alpha=0.6, label="predicted", **HIST)
        ax.set_title(f"action dim {d}")
        ax.legend(fontsize=7)
    return ctx.save_plot(name, fig)


def plot_loss_curves(ctx, curves: dict[str, tuple[list, list]], name: str,
                     expected: float | None = None, title: str = "training loss",
                     ylabel: str = "loss") -> str:
    fig, ax = _subplots(figsize=(6, 3.4))
    for label, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=label)
    if expected is not None:
        ax.axhline(expected, color="grey", ls="--", lw=1, label=f"expected at init ({expected:.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ctx.save_plot(name, fig)


def plot_timeseries(ctx, truth: np.ndarray, predicted: np.ndarray, name: str, title: str) -> str:
    fig, axes = _grid(truth.shape[1], 3.6, 2.4)
    for d, ax in enumerate(axes):
        ax.plot(truth[:, d], label="ground truth")
        ax.plot(predicted[:, d], label="predicted", ls="--")
        ax.set_title(f"{title}: dim {d}", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    return ctx.save_plot(name, fig)


def plot_scatter(ctx, truth: np.ndarray, predicted: np.ndarray, r2: list[float], name: str) -> str:
    fig, axes = _grid(truth.shape[1], 3.0, 3.0)
    for d, ax in enumerate(axes):
        ax.scatter(truth[:, d], predicted[:, d], s=4, alpha=0.4)
        lo = min(truth[:, d].min(), predicted[:, d].min())
        hi = max(truth[:, d].max(), predicted[:, d].max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.set_title(f"dim {d}: R² = {r2[d]:.2f}", fontsize=9)
        ax.set_xlabel("ground truth")
        ax.set_ylabel("predicted")
    return ctx.save_plot(name, fig)


def plot_error_histograms(ctx, errors: np.ndarray, name: str) -> str:
    fig, axes = _grid(errors.shape[1])
    for d, ax in enumerate(axes):
        ax.hist(errors[:, d], **HIST)
        ax.set_title(f"error, dim {d}", fontsize=9)
        ax.set_xlabel("predicted - truth")
    return ctx.save_plot(name, fig)


def plot_bars(ctx, values: dict[str, float], name: str, title: str, threshold: float | None = None,
              flagged: str = "below") -> str:
    """Bars with the check's threshold; `flagged` says which side of it the check flags."""
    fig, ax = _subplots(figsize=(max(3.5, 1.1 * len(values)), 3))
    ax.bar(list(values), list(values.values()))
    if threshold is not None:
        ax.axhline(threshold, color="red", ls="--", lw=1, label=f"flag {flagged} {threshold}")
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=20)
    return ctx.save_plot(name, fig)
