"""hsr_keras.config: the values it accepts come from the modules that own them."""

import pytest

from hsr_keras.config import Config
from hsr_keras.layers.stride_upsampling import INTERPOLATIONS
from hsr_keras.networks import CRITIC_NORMS
from tfrecords_builder.schema import SCALES


def test_config_accepts_exactly_the_owners_values():
    for scale in SCALES:
        assert Config(scale=scale).scale == scale
    for interpolation in INTERPOLATIONS:
        assert Config(skip_interpolation=interpolation).skip_interpolation == interpolation
    for norm in CRITIC_NORMS:
        assert Config(critic_norm=norm).critic_norm == norm
    for field, value in (("scale", 3), ("skip_interpolation", "lanczos"), ("critic_norm", "batch")):
        with pytest.raises(ValueError, match=f"^{field} must be one of"):
            Config(**{field: value})
