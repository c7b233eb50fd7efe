"""PNG plots for comparisons: each sampler's draws against the reference."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _on_reference_scale(draws, reference):
    return {k: (reference.to_reference_scale(v) if reference is not None else v) for k, v in draws.items()}


def _names(target, reference):
    return reference.names if reference is not None else target.names


def marginals(draws, target, reference, path, max_params=6):
    """Histograms of the first parameters: reference (grey) and each sampler."""
    plt = _pyplot()
    draws = _on_reference_scale(draws, reference)
    names = _names(target, reference)
    k = min(max_params, len(names))
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3), squeeze=False)
    for j, ax in enumerate(axes[0]):
        values = [v[:, j] for v in draws.values()]
        if reference is not None and reference.draws is not None:
            values.append(reference.draws[:, j])
        lo, hi = np.percentile(np.concatenate(values), [0.5, 99.5]) if values else (0, 1)
        bins = np.linspace(lo, hi, 60)
        if reference is not None and reference.draws is not None:
            ax.hist(reference.draws[:, j], bins=bins, density=True, color="0.8", label="reference")
        for name, v in draws.items():
            ax.hist(v[:, j], bins=bins, density=True, histtype="step", lw=1.5, label=name)
        ax.set_title(names[j], fontsize=9)
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pairs(draws, target, reference, path, i=0, j=1, max_points=3000):
    """Scatter of two parameters, one panel per sampler, reference in grey behind."""
    plt = _pyplot()
    names = _names(target, reference)
    if len(names) < 2:
        return
    draws = _on_reference_scale(draws, reference)
    n = max(1, len(draws))
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False, sharex=True, sharey=True)
    ref = reference.draws if reference is not None else None
    for ax, (name, v) in zip(axes[0], draws.items()):
        if ref is not None:
            r = ref[np.linspace(0, len(ref) - 1, min(max_points, len(ref))).astype(int)]
            ax.scatter(r[:, i], r[:, j], s=2, color="0.75", label="reference")
        s = v[np.linspace(0, len(v) - 1, min(max_points, len(v))).astype(int)]
        ax.scatter(s[:, i], s[:, j], s=2, alpha=0.6, label=name)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(names[i])
    axes[0, 0].set_ylabel(names[j])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mode_weights(draws, reference, path):
    """Fraction of draws nearest each mode centre against the true weights."""
    from . import metrics
    plt = _pyplot()
    centres = reference.extra["mode_centres"]
    truth = reference.extra.get("mode_weights")
    if truth is None:
        truth = metrics.mode_weights(reference.draws, centres)
    k = len(centres)
    width = 0.8 / (1 + len(draws))
    fig, ax = plt.subplots(figsize=(max(5, 0.25 * k * (1 + len(draws))), 3))
    ax.bar(np.arange(k), truth, width, color="0.6", label="true")
    for n, (name, v) in enumerate(draws.items(), start=1):
        ax.bar(np.arange(k) + n * width, metrics.mode_weights(reference.to_reference_scale(v), centres),
               width, label=name)
    ax.set_xlabel("mode")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def accuracy_vs_cost(ds, path, metric="sliced_w2"):
    """Distance to the reference against evaluations spent, one point per sampler; where the
    comparison has the metric's Monte Carlo floor (``<metric>_floor``), a hollow marker joined to
    the point shows it: the part of the distance that as many exact draws would have too."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    floors = f"{metric}_floor" in ds
    for name in ds["sampler"].values:
        row = ds.sel(sampler=name)
        if np.isfinite(float(row["evals"])) and np.isfinite(float(row[metric])):
            x, y = float(row["evals"]), float(row[metric])
            dot = ax.scatter(x, y, s=40, label=str(name))
            if floors and np.isfinite(float(row[f"{metric}_floor"])):
                f = float(row[f"{metric}_floor"])
                ax.plot([x, x], [f, y], color=dot.get_facecolor()[0], lw=1)
                ax.scatter(x, f, s=40, facecolors="none", edgecolors=dot.get_facecolor()[0])
    if floors:
        ax.set_title("hollow: the same metric for as many exact draws", fontsize=8)
    spent = ds["evals"].values.astype(float)
    spent = spent[np.isfinite(spent) & (spent > 0)]
    if spent.size and spent.max() > 10 * spent.min():  # equal budgets span a narrow range: linear there
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    ax.set_xlabel("target evaluations spent")
    ax.set_ylabel(metric.replace("_", " "))
    if ax.collections:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
