"""A build held in memory: the same samples as the TFRecords, as numpy arrays, for data that fit in RAM.

`tfrecords_builder.in_memory` makes an `InMemoryData` by cutting ERA5 exactly as the builder
does; `hsr_keras.training` trains on it under any Keras backend, without TensorFlow's input
pipeline. Nothing here imports more than numpy.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """One split's samples in %RH, day by day (and level by level within a day)."""

    lr: np.ndarray  # float32 [N, T, h, w]
    hr: np.ndarray  # float32 [N, T, H, W]
    time: np.ndarray  # datetime64[s] [N, T]

    def model_inputs(self):
        """(lr, hr) with the channel axis the models take: [N, T, h, w, 1], [N, T, H, W, 1]."""
        return self.lr[..., None], self.hr[..., None]


@dataclass(frozen=True)
class InMemoryData:
    """The splits of a dataset held in memory and the manifest facts training needs.

    `manifest` has the keys of a build's manifest.json that describe the data (`scale`,
    `hr_shape`, `lr_shape`, `grid` with `lat`/`lon`/`lr_lat`/`lr_lon`, `patches`, `stats` of
    the train split, `climatology`, `levels`, `step_hours`, `splits` with counts and skipped
    days), but no shard files and no `_dir`. `patch` holds each split's patch index of every
    sample, int64 [N] (all 0 for a single region): what a record's `patch` feature says.
    A build with extra inputs (`contract.inputs`) also has `predictors`, each split's float32
    [N, T, h, w, P] in physical units, and `static`, float32 [n_patches, H, W, S] (sample i's
    static fields: `static[patch[split][i]]`).
    """

    manifest: dict
    train: Split
    val: Split | None = None
    test: Split | None = None
    patch: dict | None = None
    predictors: dict | None = None
    static: np.ndarray | None = None
