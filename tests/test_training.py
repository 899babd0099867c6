"""hsr_keras.training.trainer on small synthetic builds: demo data, resuming, the global state a run leaves."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from test_jax_backend import tiny_in_memory_data
from tiny_runs import TINY_RUN, history_rows, write_config

from hsr_keras.training import demo_data, run_folder, trainer
from hsr_keras.training.config import Config, load_config


def test_demo_data_is_built_once_with_the_demo_dates(tmp_path):
    folder = demo_data.make_demo_data(tmp_path, verbose=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in ("train", "val", "test"):
        start, end = demo_data.DEMO_DATES[split].split(":")
        assert (manifest["splits"][split]["start"], manifest["splits"][split]["end"]) == (start, end)
    # The manifest names the shell command that makes the same build.
    assert manifest["command"][:4] == ["python", "-m", "tfrecords_builder", str(tmp_path / "era5")]
    assert "--train=" + demo_data.DEMO_DATES["train"] in manifest["command"]
    written = (folder / "manifest.json").stat().st_mtime_ns
    assert demo_data.make_demo_data(tmp_path, verbose=False) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == written  # reused, not rebuilt


def test_steps_per_epoch_counts_whole_batches():
    manifest = {"splits": {"train": {"examples": 9}}}
    assert trainer.steps_per_epoch(manifest, 4) == 2
    assert trainer.steps_per_epoch(manifest, 16) == 1  # never 0


def test_killed_run_resumes_where_it_stopped(small_build, tmp_path):
    out = tmp_path / "run"
    config = load_config(write_config(tmp_path / "tiny.json", epochs=3), preset="demo")

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt("killed after the first epoch")

    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[Kill()])
    assert [r["epoch"] for r in history_rows(out)] == ["0"]
    # As if the kill had come after epoch 1's row but before its backup: epoch 1 is done again.
    with (out / "history.csv").open("a") as f:
        f.write("1" + "," * (len(history_rows(out)[0]) - 1) + "\n")
    epochs_run = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    result = trainer.train(config, small_build, out, verbose=0, extra_callbacks=[Record()])
    assert epochs_run == [1, 2]  # resumed after epoch 0, not from scratch
    assert [r["epoch"] for r in history_rows(out)] == ["0", "1", "2"]  # each epoch once
    assert result["generator_path"].exists()
    assert result["best"]["epoch"] in (1, 2, 3) and not (out / "backup").exists()

    # The run is finished: the same call again is refused, not trained again.
    with pytest.raises(run_folder.TrainingError, match="holds a finished run \\(3 epochs"):
        trainer.train(config, small_build, out, verbose=0)


def test_train_restores_the_callers_precision_policy_when_training_fails(small_build, tmp_path):
    class Fail(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise RuntimeError("training failed")

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = load_config(write_config(tmp_path / "tiny.json"), preset="demo", precision="mixed_float16")
    with pytest.raises(RuntimeError, match="training failed"):
        trainer.train(config, small_build, tmp_path / "run", verbose=0, extra_callbacks=[Fail()])
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_the_lattice_loss_needs_fields_holding_whole_interior_lr_cells():
    manifest = {"scale": 8, "hr_shape": [8, 16, 24], "stats": {"mean": 50.0, "std": 20.0}}
    with pytest.raises(
        run_folder.TrainingError,
        match=r"lattice loss term needs .*larger than 2 x scale = 16 cells.*16 x 24: set loss_weights: \{lattice: 0\}",
    ):
        trainer.build_gan(Config(loss_weights={"lattice": 0.03}), manifest, steps_per_epoch=1)
    with pytest.raises(
        run_folder.TrainingError, match=r"loss_weights in the config: unknown loss term\(s\) \['texture'\]"
    ):
        trainer.build_gan(Config(loss_weights={"texture": 1.0}), manifest, steps_per_epoch=1)


def test_train_rejects_an_unknown_strategy(small_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json"), preset="demo")
    with pytest.raises(run_folder.TrainingError, match="strategy must be one of"):
        trainer.train(config, small_build, tmp_path / "run", strategy="tpu")


# -- content pre-training, then adversarial fine-tuning --------------------------------------


class Spy(keras.callbacks.Callback):
    """Per epoch run: the loss it trained with, the critic's weights and the optimizers' state at its end."""

    def __init__(self):
        super().__init__()
        self.epochs = {}

    def on_train_begin(self, logs=None):
        self.initial_critic = self.model.critic.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        d_optimizer = self.model.d_optimizer
        self.epochs[epoch] = {
            "loss": self.model.loss_name,
            "critic": self.model.critic.get_weights(),
            "g_iterations": int(self.model.g_optimizer.iterations),
            "g_lr": float(self.model.g_optimizer.learning_rate),
            "d_iterations": None if d_optimizer is None else int(d_optimizer.iterations),
            "d_lr": None if d_optimizer is None else float(d_optimizer.learning_rate),
        }


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def critic_columns_filled(out):
    """Per history row: whether it has the critic's columns (an adversarial epoch)."""
    filled = [
        [row.get(name, "") != "" for name in ("d_loss", "gradient_penalty", "critic_gap")] for row in history_rows(out)
    ]
    assert all(len(set(cells)) == 1 for cells in filled)
    return [cells[0] for cells in filled]


def cosine_rate(peak, step, warmup, decay):
    """The paper's schedule after the warm-up, written out (min_learning_rate 0)."""
    return 0.5 * peak * (1.0 + math.cos(math.pi * min((step - warmup) / decay, 1.0)))


def test_pretraining_trains_the_generator_alone_then_both(small_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json", epochs=4, pretrain_epochs=2), preset="demo")
    steps = trainer.steps_per_epoch(json.loads((small_build / "manifest.json").read_text()), config.batch_size)
    spy = Spy()
    trainer.train(config, small_build, tmp_path / "run", verbose=0, extra_callbacks=[spy])
    assert [spy.epochs[e]["loss"] for e in range(4)] == ["content", "content", "wgan-gp", "wgan-gp"]
    assert critic_columns_filled(tmp_path / "run") == [False, False, True, True]
    # The critic is not touched while the generator pre-trains; it trains after.
    assert same_weights(spy.epochs[1]["critic"], spy.initial_critic)
    assert not same_weights(spy.epochs[2]["critic"], spy.initial_critic)
    # The generator's optimizer runs on over both phases; the critic's starts at the fine-tuning.
    assert [spy.epochs[e]["g_iterations"] for e in range(4)] == [steps, 2 * steps, 3 * steps, 4 * steps]
    assert [spy.epochs[e]["d_iterations"] for e in range(4)] == [None, None, steps, 2 * steps]
    # Their schedules: the generator's over all 4 epochs, the critic's over the 2 fine-tuning ones.
    warmup = int(config.warmup_epochs * steps)
    assert spy.epochs[2]["g_lr"] == pytest.approx(
        cosine_rate(config.g_learning_rate, 3 * steps, warmup, 4 * steps - warmup)
    )
    assert spy.epochs[2]["d_lr"] == pytest.approx(
        cosine_rate(config.d_learning_rate, steps, warmup, 2 * steps - warmup)
    )
    # The run's generator is a fine-tuned one, whatever the pre-training scored.
    assert json.loads((tmp_path / "run" / "best.json").read_text())["epoch"] in (3, 4)


class KillAt(keras.callbacks.Callback):
    """Interrupts the run at the end of epoch `epoch` (after its backup), or in its first batch with `in_batch`."""

    def __init__(self, epoch, in_batch=False):
        super().__init__()
        self.epoch, self.in_batch = epoch, in_batch
        self.model_epoch = None

    def on_train_batch_end(self, batch, logs=None):
        if self.in_batch and self.model_epoch == self.epoch:
            raise KeyboardInterrupt(f"killed in epoch {self.epoch}")

    def on_epoch_begin(self, epoch, logs=None):
        self.model_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if not self.in_batch and epoch == self.epoch:
            raise KeyboardInterrupt(f"killed after epoch {epoch}")


@pytest.mark.slow
def test_a_run_killed_in_either_phase_resumes_in_it(small_build, tmp_path):
    out = tmp_path / "run"
    # Under mixed_float16 the switch wraps the generator's optimizer in a new loss-scale
    # optimizer: the fine-tuning's backup must still fit the model a resume builds.
    tiny = write_config(tmp_path / "tiny.json", epochs=4, pretrain_epochs=2, plot_every=100, precision="mixed_float16")
    config = load_config(tiny, preset="demo")
    steps = trainer.steps_per_epoch(json.loads((small_build / "manifest.json").read_text()), config.batch_size)
    first, second, third = Spy(), Spy(), Spy()
    with pytest.raises(KeyboardInterrupt):  # in the pre-training
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[first, KillAt(0)])
    with pytest.raises(KeyboardInterrupt):  # in the fine-tuning
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[second, KillAt(2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[third])
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]  # the backup fits the model
    assert (list(first.epochs), list(second.epochs), list(third.epochs)) == ([0], [1, 2], [3])
    assert [second.epochs[1]["loss"], second.epochs[2]["loss"], third.epochs[3]["loss"]] == [
        "content",
        "wgan-gp",
        "wgan-gp",
    ]
    assert [row["epoch"] for row in history_rows(out)] == ["0", "1", "2", "3"]
    assert critic_columns_filled(out) == [False, False, True, True]
    assert same_weights(second.epochs[1]["critic"], first.initial_critic)  # still untouched after the resume
    # Each optimizer's state came back from the backup: neither restarted nor counted twice.
    assert third.epochs[3]["g_iterations"] == 4 * steps and third.epochs[3]["d_iterations"] == 2 * steps
    assert not (out / "backup").exists()


def test_a_run_killed_in_its_first_fine_tuning_epoch_switches_again(small_build, tmp_path):
    out = tmp_path / "run"
    config = load_config(
        write_config(tmp_path / "tiny.json", epochs=3, pretrain_epochs=2, plot_every=100), preset="demo"
    )
    steps = trainer.steps_per_epoch(json.loads((small_build / "manifest.json").read_text()), config.batch_size)
    first, again = Spy(), Spy()
    with pytest.raises(KeyboardInterrupt):  # after the switch, before the fine-tuning's first backup
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[first, KillAt(2, in_batch=True)])
    assert critic_columns_filled(out) == [False, False]
    trainer.train(config, small_build, out, verbose=0, extra_callbacks=[again])
    assert list(again.epochs) == [2] and again.epochs[2]["loss"] == "wgan-gp"
    assert critic_columns_filled(out) == [False, False, True]
    assert again.epochs[2]["d_iterations"] == steps and again.epochs[2]["g_iterations"] == 3 * steps
    # The critic started from its initial weights, not from the killed process's half epoch.
    assert same_weights(again.initial_critic, first.initial_critic)


def jax_pretrain_worker(out):
    """Under KERAS_BACKEND=jax: a pre-training run killed after its switch and resumed; writes what it saw."""
    from hsr_keras.training.config import PRESETS

    data = tiny_in_memory_data()
    config = PRESETS["demo"].replace(
        **{**TINY_RUN, "epochs": 3, "pretrain_epochs": 1, "loss_weights": {"lattice": 0.0}}
    )
    first, again = Spy(), Spy()
    try:
        trainer.train(config, data, out, verbose=0, extra_callbacks=[first, KillAt(1, in_batch=True)])
    except KeyboardInterrupt:
        pass
    trainer.train(config, data, out, verbose=0, extra_callbacks=[again])
    seen = {**first.epochs, **again.epochs}
    result = {
        "backend": keras.backend.backend(),
        "losses": [seen[e]["loss"] for e in sorted(seen)],
        "resumed": list(again.epochs),
        "critic_untouched": same_weights(first.epochs[0]["critic"], first.initial_critic),
        "critic_trained": not same_weights(again.epochs[2]["critic"], first.initial_critic),
        "iterations": [again.epochs[2]["g_iterations"], again.epochs[2]["d_iterations"]],
        "critic_columns": critic_columns_filled(Path(out)),
        "finite": all(math.isfinite(float(v)) for row in history_rows(Path(out)) for v in row.values() if v != ""),
    }
    (Path(out) / "seen.json").write_text(json.dumps(result))


@pytest.mark.slow
def test_pretraining_and_its_resume_under_jax(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install hsr-keras[jax])")
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_training; test_training.jax_pretrain_worker({str(tmp_path)!r})"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["backend"] == "jax"
    assert seen["losses"] == ["content", "wgan-gp", "wgan-gp"] and seen["resumed"] == [1, 2]
    assert seen["critic_untouched"] and seen["critic_trained"] and seen["finite"]
    assert seen["critic_columns"] == [False, True, True]
    steps = 2  # 8 training days in batches of 4
    assert seen["iterations"] == [3 * steps, 2 * steps]


def test_a_run_saved_before_a_config_field_existed_resumes_as_its_default(tmp_path):
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    saved = Config(epochs=3).to_dict()
    del saved["pretrain_epochs"]  # as code before the field wrote it
    (out / "config.json").write_text(json.dumps(saved))
    assert run_folder.check(Config(epochs=3), out) == "resume"
    assert run_folder.config_changes(saved, Config(epochs=3, pretrain_epochs=1)) == [("pretrain_epochs", 0, 1)]
    with pytest.raises(run_folder.TrainingError, match=r"another config \(pretrain_epochs 0 -> 1\)"):
        run_folder.check(Config(epochs=3, pretrain_epochs=1), out)
    # A field the code no longer has is a change, unless it is retired (the scale is the data's).
    assert run_folder.config_changes({**saved, "old_field": 1}, Config(epochs=3)) == [("old_field", 1, None)]
    assert run_folder.config_changes({**saved, "scale": 4}, Config(epochs=3)) == []


@pytest.mark.slow
def test_the_switch_makes_the_critics_optimizer_in_the_runs_strategy(small_build, tmp_path):
    import tensorflow as tf

    class Probe(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.distributed = {
                name: [isinstance(v.value, tf.distribute.DistributedValues) for v in variables]
                for name, variables in (
                    ("critic", self.model.critic.trainable_variables),
                    ("d_optimizer", self.model.d_optimizer.variables),
                )
            }

    config = load_config(write_config(tmp_path / "tiny.json", epochs=2, pretrain_epochs=1), preset="demo")
    probe = Probe()
    trainer.train(config, small_build, tmp_path / "run", strategy="mirrored", verbose=0, extra_callbacks=[probe])
    assert all(probe.distributed["critic"]) and all(probe.distributed["d_optimizer"])
    assert critic_columns_filled(tmp_path / "run") == [False, True]
