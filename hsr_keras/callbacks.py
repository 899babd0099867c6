"""Training callbacks: keep the best generator, draw fixed validation samples as maps."""

from pathlib import Path

import keras
import numpy as np

from hsr_keras.plots import plot_sample_maps


class BestGeneratorCheckpoint(keras.callbacks.Callback):
    """Save the generator (the part users deploy) as `.keras` whenever `monitor` improves."""

    def __init__(self, path, monitor="val_mse", mode="min"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value):
            return
        if self.sign * value < self.best:
            self.best = self.sign * value
            self.model.generator.save(self.path)


class SamplePlots(keras.callbacks.Callback):
    """Every `every` epochs, a PNG of LR / truth / prediction / error for fixed validation days."""

    def __init__(self, lr, hr, time, manifest, folder, every=10, step=0):
        super().__init__()
        self.lr = lr
        self.hr = hr
        self.time = time
        self.manifest = manifest
        self.folder = Path(folder)
        self.every = max(int(every), 1)
        self.step = step

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        pred = keras.ops.convert_to_numpy(self.model.generator(self.lr[..., None], training=False))[..., 0]
        s = self.step
        stamps = ", ".join(str(t[s])[:16] for t in self.time)
        plot_sample_maps(
            self.lr[:, s],
            self.hr[:, s],
            {"model": pred[:, s].astype("float32")},
            self.manifest,
            self.folder / f"epoch_{epoch + 1:04d}.png",
            title=f"epoch {epoch + 1}: {stamps} UTC",
        )
