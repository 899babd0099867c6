"""Figures a person would rather look at than read: sample maps and training curves."""

import csv
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (training runs have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=100):
    """Publishes `fig` as `path` (creating its folder; the format from its suffix), frees it, returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.publishing(path) as temporary:
        fig.savefig(temporary, dpi=dpi)
    pyplot().close(fig)
    return path


def plot_sample_maps(lr, truth, predictions, manifest, path, title=""):
    """One row per sample: LR, truth, each prediction and its error, on shared colour scales.

    Args:
        lr: [N, h, w] LR fields (one time step each), %RH.
        truth: [N, H, W] HR truth, %RH.
        predictions: {name: [N, H, W]} predictions, %RH.
        manifest: the data manifest (grid coordinates for the lat/lon axes).
        path: PNG to write.
    """
    plt = pyplot()
    grid = manifest["grid"]
    hr_extent = map_extent(grid["lon"], grid["lat"])
    lr_extent = map_extent(grid["lr_lon"], grid["lr_lat"])
    names = list(predictions)
    cols = 2 + 2 * len(names)
    fig, axes = plt.subplots(len(truth), cols, figsize=(2.6 * cols, 2.4 * len(truth)), squeeze=False)
    vmin, vmax = 0.0, max(100.0, float(np.nanmax(truth)))
    emax = max(1e-6, max(float(np.nanmax(np.abs(predictions[n] - truth))) for n in names))
    for row in range(len(truth)):
        panels = [("LR", lr[row], lr_extent, "rh"), ("truth", truth[row], hr_extent, "rh")]
        for name in names:
            panels.append((name, predictions[name][row], hr_extent, "rh"))
            panels.append((f"{name} - truth", predictions[name][row] - truth[row], hr_extent, "err"))
        for ax, (label, field, extent, kind) in zip(axes[row], panels):
            if kind == "rh":
                image = ax.imshow(field, origin="lower", extent=extent, vmin=vmin, vmax=vmax, cmap="YlGnBu")
            else:
                image = ax.imshow(field, origin="lower", extent=extent, vmin=-emax, vmax=emax, cmap="RdBu_r")
            ax.set_title(label, fontsize=8)
            ax.tick_params(labelsize=6)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        axes[row][0].set_ylabel("latitude (deg N)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("longitude (deg E)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def map_extent(lon, lat):
    """imshow extent with cell edges half a grid step beyond the first and last points."""
    dlon = (lon[-1] - lon[0]) / max(len(lon) - 1, 1) if len(lon) > 1 else 0.25
    dlat = (lat[-1] - lat[0]) / max(len(lat) - 1, 1) if len(lat) > 1 else 0.25
    return [lon[0] - dlon / 2, lon[-1] + dlon / 2, lat[0] - dlat / 2, lat[-1] + dlat / 2]


def plot_history(csv_path, path):
    """Training curves from a Keras CSVLogger file: losses, validation PSNR and SSIM."""
    rows = list(csv.DictReader(Path(csv_path).open()))
    if not rows:
        return
    plt = pyplot()
    epochs = [int(r["epoch"]) + 1 for r in rows]
    series = {key: [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows] for key in rows[0]}
    panels = [
        ("generator", ["g_loss", "content_loss", "val_content_loss"]),
        ("critic", ["d_loss", "gradient_penalty", "critic_gap"]),
        ("validation PSNR (dB)", ["val_psnr"]),
        ("validation SSIM", ["val_ssim"]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            if key in series:
                ax.plot(epochs, series[key], marker="o", ms=3, label=key)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
