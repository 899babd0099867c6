"""Training: the config, the input pipeline, the run recipe and its folder, callbacks, the search.

    config.py       every hyper-parameter, the presets        trainer.py     build_gan, train
    data.py         TFRecords -> tf.data batches              run_folder.py  what a run folder holds, resume, lock
    demo_data.py    the built-in synthetic demo build         callbacks.py   best generator, history, non-finite stop
    schedules.py    warm-up then cosine decay                 search*.py     the KerasTuner search

The names of the earlier module `hsr_keras.training` are lent from their homes, on first use.
"""

from tfrecords_builder.contract import moved

__getattr__ = moved.lazy_names(
    __name__,
    {
        "BACKUP_DIR": "hsr_keras.training.run_folder",
        "CURVES_FILE": "hsr_keras.training.run_folder",
        "EVALUATION_FILE": "hsr_keras.training.run_folder",
        "HISTORY_FILE": "hsr_keras.training.run_folder",
        "RUN_OUTPUTS": "hsr_keras.training.run_folder",
        "TrainingError": "hsr_keras.training.run_folder",
        "config_changes": "hsr_keras.training.run_folder",
        "DEMO_DATES": "hsr_keras.training.demo_data",
        "make_demo_data": "hsr_keras.training.demo_data",
        "FineTuning": "hsr_keras.training.trainer",
        "build_gan": "hsr_keras.training.trainer",
        "check_run": "hsr_keras.training.trainer",
        "dataset_inputs": "hsr_keras.training.trainer",
        "pretraining": "hsr_keras.training.trainer",
        "steps_per_epoch": "hsr_keras.training.trainer",
        "train": "hsr_keras.training.trainer",
    },
)
