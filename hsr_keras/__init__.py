"""hsr-keras: super-resolution of ERA5 relative humidity with a WGAN-GP in Keras 3.

    layers/      Keras layers (one per module)         scoring/     the metric card, baselines, figures
    models/      networks, the GAN, losses, model files training/    config, data, the run recipe, search
    evaluation/  scoring methods on a split, reports   serving/     SavedModel export, prediction
    fit, tune, evaluate, compare, export, predict: the commands (`python -m hsr_keras.<command>`)

Modules of the earlier flat layout still import from their old names (`MOVED`).
"""

import os

from tfrecords_builder.contract import moved

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) hides the progress a user
# wants to see; errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Old module -> its home now. `hsr_keras.training`, `.evaluation` and `.serving` were modules
# and are folders now: their packages lend the old modules' names (see their __init__.py).
MOVED = {
    "hsr_keras.callbacks": "hsr_keras.training.callbacks",
    "hsr_keras.config": "hsr_keras.training.config",
    "hsr_keras.data": "hsr_keras.training.data",
    "hsr_keras.ensemble_scores": "hsr_keras.scoring.ensemble_scores",
    "hsr_keras.evaluation_plots": "hsr_keras.evaluation.figures",
    "hsr_keras.in_memory": "tfrecords_builder.in_memory",
    "hsr_keras.interpolation": "hsr_keras.scoring.interpolation",
    "hsr_keras.losses": "hsr_keras.models.losses",
    "hsr_keras.method_scores": "hsr_keras.evaluation.method_scores",
    "hsr_keras.metrics": "hsr_keras.scoring.metrics",
    "hsr_keras.model_files": "hsr_keras.models.model_files",
    "hsr_keras.networks": "hsr_keras.models.networks",
    "hsr_keras.plots": "hsr_keras.scoring.plots",
    "hsr_keras.prediction": "hsr_keras.serving.prediction",
    "hsr_keras.provenance": "hsr_keras.models.provenance",
    "hsr_keras.reports": "hsr_keras.evaluation.reports",
    "hsr_keras.schedules": "hsr_keras.training.schedules",
    "hsr_keras.search": "hsr_keras.training.search",
    "hsr_keras.search_space": "hsr_keras.training.search_space",
    "hsr_keras.spectra": "hsr_keras.scoring.spectra",
    "hsr_keras.srgan": "hsr_keras.models.srgan",
    "hsr_keras.tiling": "hsr_keras.serving.tiling",
    "hsr_keras.wgan": "hsr_keras.models.wgan",
}
moved.install(MOVED)
