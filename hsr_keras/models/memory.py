"""How much memory K members need, and how much the machine has: the check behind every member count.

A generator update with `ensemble_size` K runs the generator on K x batch fields at once, so its
activations grow K-fold; `evaluate --samples N` holds N members of every streamed batch. Both
are estimated here from the shapes alone, before anything is built or read, and compared with
the memory the process can still use. The estimates are deliberately rough (a factor of about
2 either way): they tell a member count that cannot fit from one that can, not the peak to the
byte. Where the available memory is unknown (not Linux, or the step runs on an accelerator,
whose memory this module does not see), nothing is refused.
"""

import math

GIB = 2**30
TRAINING_FACTOR = 4
"""Bytes held per activation element in a training step, relative to one forward copy: the forward
activations kept for the backward pass, their gradients, and the layers' temporaries."""
BLOCK_TENSORS = {"ResidualBlock": 7, "ConvGRU": 8, "CBAM": 4, "SqueezeExcitation": 2, "MultiKernelStem": 3}
"""Activation tensors of a layer's output size that a composite layer holds inside (convolutions,
normalisations, activations, gates), by class name; other layers hold their output only."""
EVALUATION_COPIES = 4
"""float64 copies of a batch's members the ensemble scores hold at once (the members, sorted ones, two temporaries)."""


def available_bytes():
    """Memory this process can still use: `MemAvailable` of /proc/meminfo (Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def activation_elements(model, sample_shape):
    """Activation elements of one forward pass of one sample through a functional `model`, from its layers' shapes.

    Each layer counts its output's size times `BLOCK_TENSORS` for composite layers (1 otherwise).
    `sample_shape` is one sample without the batch axis, e.g. `(8, 8, 8, 1)`, or for a model of
    several named inputs a dict of them by name.
    """
    import keras

    if isinstance(sample_shape, dict):
        shapes = {id(t): (1,) + tuple(sample_shape[t.name]) for t in model.inputs}
    else:
        shapes = {id(model.inputs[0]): (1,) + tuple(sample_shape)}
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = keras.tree.map_structure(lambda t: keras.KerasTensor(shapes[id(t)], dtype=t.dtype), layer.input)
        outputs = layer.compute_output_spec(inputs)
        for tensor, out in zip(keras.tree.flatten(layer.output), keras.tree.flatten(outputs)):
            shapes[id(tensor)] = tuple(out.shape)
            total += math.prod(out.shape[1:]) * BLOCK_TENSORS.get(type(layer).__name__, 1)
    return int(total)


def training_bytes(generator, lr_shape, batch_size, members, dtype_bytes=4, hr_shape=None):
    """Estimated bytes of the generator's part of one training step: K members x batch samples.

    `hr_shape` (the build's [T, H, W]) sizes a `static` input; the other inputs follow `lr_shape`.
    """
    steps, h, w = lr_shape
    shapes = {"lr": (steps, h, w, 1)}
    for tensor in generator.inputs[1:]:
        channels = tensor.shape[-1]
        if tensor.name == "static":
            shapes["static"] = (*hr_shape[1:3], channels)
        else:  # predictors on the LR grid, time features per step
            shapes[tensor.name] = (steps, h, w, channels) if len(tensor.shape) == 5 else (steps, channels)
    sample = shapes if len(generator.inputs) > 1 else shapes["lr"]
    return activation_elements(generator, sample) * batch_size * members * dtype_bytes * TRAINING_FACTOR


def evaluation_bytes(hr_shape, batch_size, members):
    """Estimated bytes of the ensemble scores of one streamed batch: float64 members, `EVALUATION_COPIES` of them."""
    return math.prod(hr_shape) * batch_size * members * 8 * EVALUATION_COPIES


def on_accelerator():
    """Whether Keras' backend computes on a GPU or TPU (whose memory `available_bytes` does not see)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return False


def shortfall(needed, available=None):
    """`(needed GiB, available GiB)` when `needed` bytes exceed the available memory, else None (also when unknown)."""
    available = available_bytes() if available is None else available
    if available is None or needed <= available:
        return None
    return needed / GIB, available / GIB


def limit_text(name, value, needed, available, lower):
    """The one line a refused member count gives: the field, the estimate, the memory, what to lower."""
    return (
        f"{name}={value} needs about {needed:.1f} GiB of memory ({lower}), more than the {available:.1f} GiB "
        f"available: lower {name}"
    )
