"""Serving: the SavedModel that TF Serving loads, and super-resolving ERA5 files with a model.

    saved_model.py   the signature, the asset, the checked export
    prediction.py    LR netCDF in, CF netCDF on the fine grid out
    tiling.py        fields of any size in blended tiles

The names of the earlier module `hsr_keras.serving` (now `saved_model.py`) are lent on first use.
"""

from tfrecords_builder.contract import moved

__getattr__ = moved.lazy_names(
    __name__,
    {
        name: "hsr_keras.serving.saved_model"
        for name in (
            "ExportError",
            "check_finite_weights",
            "check_scale",
            "export",
            "model_info",
            "probe_input",
            "publish",
            "save_servable",
            "serving_function",
            "use_tensorflow_backend",
            "verify_servable",
        )
    },
)
