"""Evaluation: methods (models and baselines) scored on a split, streamed, and written down.

    engine.py         methods, baselines, the streaming evaluation    reports.py   tables, CSV, results.json
    method_scores.py  one method's running scores                     figures.py   curves, spectra, maps

The names of the earlier module `hsr_keras.evaluation` (now `engine.py`) are lent on first use.
"""

from tfrecords_builder.contract import moved

__getattr__ = moved.lazy_names(
    __name__,
    {
        name: "hsr_keras.evaluation.engine"
        for name in (
            "BASELINES",
            "BASELINE_GROUPS",
            "COMPARISON_MODEL",
            "COMPARISON_REFERENCE",
            "MAP_DAYS",
            "REFERENCE",
            "EvaluationError",
            "Method",
            "add_reference_ratio",
            "baseline_methods",
            "check_batching",
            "compare_with_bicubic",
            "evaluate_methods",
            "interpolation_method",
            "keras_model_method",
            "lattice_scale",
            "load_model_method",
            "parse_baselines",
            "saved_model_method",
            "stochastic_generator",
            "stream_split",
            "training_climatology",
        )
    },
)
