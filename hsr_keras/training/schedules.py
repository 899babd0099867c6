"""Learning-rate schedule of the paper (section 4.2, eq. 7): linear warm-up, then cosine decay."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hsr_keras")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `learning_rate`, then cosine decay to `min_learning_rate`.

    The paper's eq. 7 writes cos(epoch / T_max); the standard cosine annealing it cites
    (and this schedule) uses cos(pi * step / decay_steps), which reaches `min_learning_rate`
    at the end of training instead of oscillating.

    Args:
        learning_rate: peak learning rate, reached at the end of the warm-up.
        warmup_steps: optimizer steps of linear warm-up. Defaults to 0.
        decay_steps: optimizer steps of cosine decay after the warm-up.
        min_learning_rate: the floor (the paper's eta_min). Defaults to 0.
    """

    def __init__(self, learning_rate, decay_steps, warmup_steps=0, min_learning_rate=0.0):
        if learning_rate <= 0 or decay_steps <= 0 or warmup_steps < 0:
            raise ValueError(
                "Expected learning_rate > 0, decay_steps > 0, warmup_steps >= 0. Received: "
                f"learning_rate={learning_rate}, decay_steps={decay_steps}, warmup_steps={warmup_steps}"
            )
        self.learning_rate = float(learning_rate)
        self.decay_steps = int(decay_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_learning_rate = float(min_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.learning_rate * (step + 1.0) / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        cosine = self.min_learning_rate + 0.5 * (self.learning_rate - self.min_learning_rate) * (
            1.0 + ops.cos(math.pi * progress)
        )
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "min_learning_rate": self.min_learning_rate,
        }
