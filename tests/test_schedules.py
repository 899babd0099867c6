"""hsr_keras.training.schedules: the warm-up and cosine decay of the learning rate."""

import pytest

from hsr_keras.training.schedules import WarmupCosine


def test_warmup_cosine_schedule_values():
    schedule = WarmupCosine(1e-3, decay_steps=100, warmup_steps=10, min_learning_rate=1e-5)
    values = {s: float(schedule(s)) for s in (0, 4, 9, 10, 60, 110, 500)}
    assert values[0] == pytest.approx(1e-4)
    assert values[4] == pytest.approx(5e-4)
    assert values[9] == pytest.approx(1e-3)
    assert values[10] == pytest.approx(1e-3)
    assert values[60] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert values[110] == pytest.approx(1e-5)
    assert values[500] == pytest.approx(1e-5)
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="decay_steps"):
        WarmupCosine(1e-3, decay_steps=0)
