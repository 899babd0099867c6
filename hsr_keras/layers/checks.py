"""Argument checks shared by the layers and network builders, with Keras-style messages."""

from tfrecords_builder.contract.schema import SCALES


def check_int(name, value, minimum=1):
    """Raise unless `value` is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value}")


def check_bool(name, value):
    """Raise unless `value` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value}")


def check_scale(scale):
    """Raise unless `scale` is one of the upsampling factors a data build can have."""
    if isinstance(scale, bool) or scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}. Received: scale={scale}")
