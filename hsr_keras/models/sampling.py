"""Drawing ensemble members from a generator: its noise layers, their seeds, and a sampler in inference mode.

A generator has noise of one of two kinds (`config.noise`): "stem", the paper's
`keras.layers.GaussianNoise` after the stem, which Keras adds in training only; or "texture",
`NoiseInjection` layers at every stage, which add their noise in inference too. `sampler`
returns a model that draws a new member on every inference call in both cases (for "stem" a
copy whose noise layer is a `SamplingGaussianNoise`, every other layer and weight shared), and
None for a generator without noise (SRCNN, `noise_stddev: 0`).

Members are reproducible: every noise layer draws from its own `keras.random.SeedGenerator`,
whose state this module binds to a stream of a seed. `reseed` sets the states once (a run of
calls then draws a fixed sequence of members: `evaluate --samples`); `seeded_call` binds them
for one call only, without touching the variables (`keras.StatelessScope`), so a traced
function with the seed as an input gives the same member for the same seed and input, whatever
ran before and in parallel (the `sample` signature of an export, `predict --members`).
"""

import keras
from keras import ops

from hsr_keras.layers import NoiseInjection, SamplingGaussianNoise

MEMBER_STREAMS = 2**20
"""Streams per noise layer and seed: layer `i`'s stream `m` is the seed-generator state `[seed, i * 2**20 + m]`."""


def _layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]


def noise_layers(model):
    """The layers of `model` that add noise in inference mode (`NoiseInjection`, `SamplingGaussianNoise`), in order."""
    return [layer for layer in _layers(model) if isinstance(layer, (NoiseInjection, SamplingGaussianNoise))]


def has_noise(model):
    """Whether `model` has noise to sample: noise layers of either kind (the paper's stem noise included)."""
    return bool(noise_layers(model)) or any(isinstance(layer, keras.layers.GaussianNoise) for layer in _layers(model))


def samples_in_inference(model):
    """Whether every inference call of `model` draws a new member (it has `NoiseInjection` layers)."""
    return any(isinstance(layer, NoiseInjection) for layer in _layers(model))


def sampler(model, seed=0):
    """`model` as a sampler in inference mode (a new member per call), or None when it has no noise.

    A generator with `NoiseInjection` layers is one already. For the paper's stem noise, a copy
    whose `keras.layers.GaussianNoise` layers are `SamplingGaussianNoise` (seeded `seed + 1`,
    `seed + 2`, ...): every other layer is the same object (same weights), and calling the copy in
    inference mode samples the noise while batch normalisation keeps its moving statistics,
    which `training=True` would not.
    """
    if samples_in_inference(model):
        return model
    found = []

    def clone(layer):
        if isinstance(layer, keras.layers.GaussianNoise):
            found.append(layer.name)
            return SamplingGaussianNoise(layer.stddev, seed=seed + len(found), name=layer.name)
        return layer

    if not any(isinstance(layer, keras.layers.GaussianNoise) for layer in _layers(model)):
        return None
    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    return copy if found else None


def stream(seed, layer_index, member=0):
    """The seed-generator state `[seed, layer_index * MEMBER_STREAMS + member]` (ints or scalar tensors)."""
    return seed, layer_index * MEMBER_STREAMS + member


def reseed(model, seed):
    """Set every noise layer's seed generator to stream 0 of `seed`: the calls that follow draw a fixed sequence."""
    for i, layer in enumerate(noise_layers(model)):
        state = layer.seed_generator.state
        state.assign(ops.convert_to_tensor(stream(int(seed), i), dtype=state.dtype))


def seed_states(model, seed, member=0):
    """`keras.StatelessScope` state mapping that binds every noise layer to stream `member` of `seed` for one call."""
    mapping = []
    for i, layer in enumerate(noise_layers(model)):
        state = layer.seed_generator.state
        first, second = stream(seed, i, member)
        value = ops.stack([ops.cast(first, state.dtype), ops.cast(second, state.dtype)])
        mapping.append((state, value))
    return mapping


def seeded_call(model, lr, seed, member=0):
    """`model(lr, training=False)` with its noise drawn from stream `member` of `seed`; the model's variables untouched.

    `seed` and `member` may be Python ints or scalar integer tensors (traced inputs). Each sample
    of the batch gets its own noise (the draws are shaped like the batch), so a batch of the
    same LR field repeated N times gives N different members.
    """
    with keras.StatelessScope(state_mapping=seed_states(model, seed, member)):
        return model(lr, training=False)
