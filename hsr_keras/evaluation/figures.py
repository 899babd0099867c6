"""Figures of `python -m hsr_keras.evaluate`: per-month curves, power spectra, sample maps.

* `plot_monthly`: the per-month mean of each metric per method (the paper's Fig. 9).
* `plot_spectra`: radially averaged power spectra of each method against the truth, and their
  ratio to it: where a method's curve drops below the truth's it lacks small-scale texture
  (interpolation, and any model trained on a pixel loss alone), which is what an adversarial
  loss is chosen to restore.
* `plot_method_maps`: LR, truth, each method and its error for one day and step, on one colour
  scale for the fields and one symmetric scale for the errors, with lat/lon axes (Fig. 10).
* `plot_rank_histograms`: where the truth falls among each ensemble's members, against flat.

Line styles: interpolation from the true coordinates dashed, naive image resize dotted,
models solid.
"""

import numpy as np

from hsr_keras.scoring.plots import map_extent, pyplot, save_figure
from tfrecords_builder.contract.patches import patch_coords

MONTHLY_PANELS = (
    ("mse", "MSE (%RH$^2$)"),
    ("mae", "MAE (%RH)"),
    ("ssim", "SSIM"),
    ("psnr", "PSNR (dB, paper style)"),
    ("acc", "ACC"),
    ("tcc", "TCC"),
)


def _style(name):
    if "naive" in name:
        return {"linestyle": ":", "marker": "x"}
    if "aligned" in name:
        return {"linestyle": "--", "marker": "s"}
    if "(members)" in name:
        return {"linestyle": "-.", "marker": None}
    return {"linestyle": "-", "marker": "o"}


def _colours(names):
    """One distinct colour per name (tab10 up to 10 names, tab20 beyond)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _finite(values):
    """Non-finite values (an exact reproduction has PSNR inf) become NaN, so they are not drawn."""
    out = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(out), out, np.nan)


def plot_monthly(monthly, path, metrics=MONTHLY_PANELS, title=""):
    """Per-month means of each metric per method, one panel per metric.

    Args:
        monthly: {method: {"YYYY-MM": {metric: value}}} as `evaluate_methods` returns.
        path: PNG to write.
        metrics: (key, axis label) pairs, one panel each. Defaults to the paper's six.
        title: figure title.

    Returns:
        `path`.
    """
    plt = pyplot()
    months = sorted({m for per in monthly.values() for m in per})
    x = np.arange(len(months))
    cols = 3
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    colours = _colours(list(monthly))
    for ax, (key, label) in zip(axes.flat, metrics):
        for name, per in monthly.items():
            values = _finite([per.get(m, {}).get(key, np.nan) for m in months])
            ax.plot(x, values, label=name, ms=4, color=colours[name], **_style(name))
        ax.set_title(label, fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(months, rotation=45, ha="right", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(months) == 1:
            ax.set_xlim(-0.5, 0.5)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    legend_rows = -(-len(labels) // 4)
    fig.tight_layout(rect=(0, 0.04 * legend_rows + 0.02, 1, 0.97 if title else 1))
    return save_figure(fig, path)


def plot_spectra(spectra, path, title=""):
    """Radially averaged power spectra (log-log) of each method and the truth, and their ratio.

    Args:
        spectra: {"wavenumber": [k], "truth": [P], "methods": {name: [P]}} (as
            `evaluate_methods` returns; power in %RH^2 per mode, mean over frames), and
            optionally "power_bands": {name: [first, last]}, shaded on the ratio panel (the
            wavenumbers of the table's power columns).
        path: PNG to write.
        title: figure title.

    Returns:
        `path`.
    """
    plt = pyplot()
    k = np.asarray(spectra["wavenumber"], dtype=np.float64)
    truth = np.asarray(spectra["truth"], dtype=np.float64)
    fig, (ax, ratio_ax) = plt.subplots(1, 2, figsize=(12, 4.6))
    ax.loglog(k, truth, color="black", linewidth=2.5, label="truth")
    ratio_ax.axhline(1.0, color="black", linewidth=2.5, label="truth")
    colours = _colours(list(spectra["methods"]))
    for name, power in spectra["methods"].items():
        power = np.asarray(power, dtype=np.float64)
        style = dict(_style(name), color=colours[name], ms=3)
        ax.loglog(k, np.where(power > 0, power, np.nan), label=name, **style)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(truth > 0, power / truth, np.nan)
        ratio_ax.semilogx(k, np.where(ratio > 0, ratio, np.nan), **style)
    for shade, (name, (first, last)) in zip((0.12, 0.06), spectra.get("power_bands", {}).items()):
        if first <= last:
            ratio_ax.axvspan(first - 0.5, last + 0.5, color="grey", alpha=shade, label=name)
    ratio_ax.set_yscale("log")
    ax.set_xlabel("wavenumber (cycles per domain)", fontsize=8)
    ax.set_ylabel("power (%RH$^2$ per mode)", fontsize=8)
    ax.set_title("radially averaged power spectrum", fontsize=9)
    ratio_ax.set_xlabel("wavenumber (cycles per domain)", fontsize=8)
    ratio_ax.set_title("power / truth's power (below 1: missing small-scale variance)", fontsize=9)
    for a in (ax, ratio_ax):
        a.grid(alpha=0.3, which="both")
        a.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    if spectra.get("power_bands"):
        ratio_ax.legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_method_maps(entry, manifest, path, columns=4):
    """LR, truth, and each method beside its error, for one day and step.

    Fields share one colour scale (0 to the larger of 100 %RH and the maximum shown), errors
    one symmetric scale (the largest absolute error shown); lat/lon axes from the manifest grid.

    Args:
        entry: {"date", "time", "lr" [h, w], "truth" [H, W], "predictions": {name: [H, W]}}.
        manifest: the data manifest (grid coordinates).
        path: PNG to write.
        columns: panels per row (even: a method and its error side by side). Defaults to 4.

    Returns:
        `path`.
    """
    plt = pyplot()
    grid = patch_coords(manifest, entry.get("patch", 0))
    hr_extent = map_extent(grid["lon"], grid["lat"])
    lr_extent = map_extent(grid["lr_lon"], grid["lr_lat"])
    truth = np.asarray(entry["truth"], dtype=np.float64)
    predictions = {n: np.asarray(p, dtype=np.float64) for n, p in entry["predictions"].items()}
    panels = [("LR", entry["lr"], lr_extent, "rh"), ("truth", truth, hr_extent, "rh")]
    panels += [None] * ((-len(panels)) % columns)
    for name, pred in predictions.items():
        panels += [(name, pred, hr_extent, "rh"), (f"{name} - truth", pred - truth, hr_extent, "err")]
    rows = -(-len(panels) // columns)
    values = [truth, np.asarray(entry["lr"])] + list(predictions.values())
    vmax = max(100.0, max(float(np.nanmax(v)) for v in values))
    emax = max([1e-6] + [float(np.nanmax(np.abs(p - truth))) for p in predictions.values()])
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns + 1.2, 2.6 * rows), squeeze=False)
    images = {}
    for ax, panel in zip(axes.flat, panels + [None] * (rows * columns - len(panels))):
        if panel is None:
            ax.axis("off")
            continue
        label, field, extent, kind = panel
        if kind == "rh":
            images["rh"] = ax.imshow(field, origin="lower", extent=extent, vmin=0.0, vmax=vmax, cmap="YlGnBu")
        else:
            images["err"] = ax.imshow(field, origin="lower", extent=extent, vmin=-emax, vmax=emax, cmap="RdBu_r")
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("longitude (deg E)", fontsize=6)
        ax.set_ylabel("latitude (deg N)", fontsize=6)
    fig.suptitle(f"{entry['time']} UTC", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 0.97))
    if "rh" in images:
        cax = fig.add_axes((0.915, 0.55, 0.015, 0.35))
        fig.colorbar(images["rh"], cax=cax).set_label("relative humidity (%)", fontsize=7)
        cax.tick_params(labelsize=6)
    if "err" in images:
        cax = fig.add_axes((0.915, 0.1, 0.015, 0.35))
        fig.colorbar(images["err"], cax=cax).set_label("error (%RH)", fontsize=7)
        cax.tick_params(labelsize=6)
    return save_figure(fig, path, dpi=90)


def plot_rank_histograms(histograms, path, title=""):
    """One panel per ensemble method: each rank's share of the points, the flat share 1/(K+1) and +-20 % of it.

    Args:
        histograms: {method: [share of rank 0 .. K]} (scores' "rank_histogram").
        path: PNG to write.
        title: figure title.

    Returns:
        `path`.
    """
    plt = pyplot()
    names = list(histograms)
    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        shares = np.asarray(histograms[name], dtype=np.float64)
        flat = 1.0 / len(shares)
        ax.bar(np.arange(len(shares)), shares, color="tab:blue", alpha=0.8)
        ax.axhline(flat, color="k", lw=1)
        ax.axhspan(0.8 * flat, 1.2 * flat, color="0.85", zorder=0, label="flat +- 20 %")
        flatness = float(np.max(np.abs(shares / flat - 1.0)))
        ax.set_title(f"{name}\nflatness {flatness:.2f}", fontsize=9)
        ax.set_xlabel("rank of the truth among the members", fontsize=8)
        ax.set_ylabel("share of points", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
