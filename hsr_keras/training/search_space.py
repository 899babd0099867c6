"""The search space of `python -m hsr_keras.tune`: which Config fields it tunes, over which ranges.

Keras-free, so that `tune --help` can list the space at once; `hsr_keras.training.search` builds
and trains the trials.
"""

import dataclasses

from tfrecords_builder.contract.errors import InputError


class SearchError(InputError):
    """Bad input to a search (space, objective, data): the command prints it on one line and exits with 2."""


# The "small" space: quick trials that leave the networks as the base config has them.
SMALL_SPACE = ("g_learning_rate", "d_learning_rate", "adversarial_weight", "critic_steps")
# Parameters a base config does not use, left out of its space: (field, value) -> names.
UNUSED = {
    # The generator alone on the L1 loss: no critic, and with Adam a loss weight changes nothing.
    ("loss", "content"): ("d_learning_rate", "content_weight", "adversarial_weight", "critic_steps", "gp_weight"),
    ("loss", "gan"): ("gp_weight",),
    ("architecture", "srcnn"): ("filters", "num_res_blocks", "noise_stddev"),
    ("architecture", "srgan"): ("noise_stddev",),
}
# The crps term compares members: at ensemble_size 1 a trial's crps_weight is set to 0 (`search.GANHyperModel`).
ENSEMBLE_SIZES = (1, 2, 4, 8)

# -- the search space ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Param:
    """One tuned Config field: a float or int range, or a list of choices."""

    name: str
    kind: str  # "float", "int" or "choice"
    low: float = None
    high: float = None
    values: tuple = ()
    log: bool = False
    step: float = None
    default: object = None

    def declare(self, hp):
        """Register the parameter on a `keras_tuner.HyperParameters` and return its value."""
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default)
        sampling = "log" if self.log else "linear"
        if self.kind == "int":
            return hp.Int(self.name, int(self.low), int(self.high), sampling=sampling, default=self.default)
        return hp.Float(self.name, self.low, self.high, step=self.step, sampling=sampling, default=self.default)

    def describe(self):
        if self.kind == "choice":
            return "one of " + ", ".join(str(v) for v in self.values)
        text = f"{self.low:g} .. {self.high:g}"
        if self.step:
            text += f" step {self.step:g}"
        return text + (" (log)" if self.log else "")


def search_space(base, space="full"):
    """The tuned parameters, named after their Config fields (`content_weight`, `adversarial_weight`: the
    `loss_weights` of those terms): the one home of the ranges.

    Optimiser and loss settings get fixed ranges that hold the paper's values (and the demo
    preset's); the generator's width and depth are sized around the base config's, so the
    same space suits the paper's 128-filter network and the demo's 32-filter one. Each
    parameter's default (the value KerasTuner starts from) is the base config's, clamped
    into the range. Parameters the base does not use (`UNUSED`: the critic's with the
    content loss, the paper generator's with SRCNN) are left out.

    Args:
        base: the `Config` trials start from.
        space: "full" (every parameter below), "small" (learning rates, adversarial weight
            and critic steps 1-2 with the architecture fixed: fast smoke runs) or a
            comma-separated list of parameter names.

    Returns:
        {name: Param}, in a fixed order.
    """
    half, double = max(2, 2 * round(base.filters / 4)), 2 * base.filters
    full = [
        # Two time-scale update rule: separate generator and critic rates.
        Param("g_learning_rate", "float", 1e-5, 3e-3, log=True),
        Param("d_learning_rate", "float", 1e-5, 3e-3, log=True),
        # With Adam only the ratio of the two generator weights matters, so the content
        # weight moves over a narrow linear range and the adversarial weight over decades.
        Param("content_weight", "float", 0.5, 2.0),
        Param("adversarial_weight", "float", 1e-4, 1e-1, log=True),
        Param("critic_steps", "int", 1, 5),
        Param("gp_weight", "float", 1.0, 30.0, log=True),
        Param("filters", "choice", values=tuple(sorted({half, base.filters, double}))),
        Param("num_res_blocks", "int", base.num_res_blocks // 2, max(2 * base.num_res_blocks, 1)),
        # The stem's training-only noise is small; texture noise (on in inference, learned strengths)
        # starts at this value on the LR grid and needs more than 0 (docs/ensembles.md).
        Param("noise_stddev", "float", 0.0, 0.3, step=0.05)
        if base.noise != "texture"
        else Param("noise_stddev", "float", 0.25, 2.0, step=0.25),
        # Ensembles (docs/ensembles.md): members per LR sequence in each generator update, the
        # almost-fair CRPS of the members and the members' band power against the truth's.
        Param("ensemble_size", "choice", values=ENSEMBLE_SIZES),
        Param("crps_weight", "float", 0.0, 2.0, step=0.25),
        Param("spectral_weight", "float", 0.0, 0.5, step=0.05),
    ]
    params = {p.name: p for p in full}
    unused = {name for (field, value), names in UNUSED.items() if getattr(base, field, None) == value for name in names}
    if space == "full":
        names = [name for name in params if name not in unused]
    elif space == "small":
        names = [name for name in SMALL_SPACE if name not in unused]
        params["critic_steps"] = Param("critic_steps", "int", 1, 2)
    else:
        names = [n.strip() for n in space.split(",") if n.strip()]
        unknown = [n for n in names if n not in params]
        if unknown or not names:
            raise SearchError(
                f"--space must be 'full', 'small' or a comma-separated list of {', '.join(params)}. "
                f"Received: space={space!r}"
            )
        if unused.intersection(names):
            raise SearchError(
                f"--space names {', '.join(sorted(unused.intersection(names)))}, which this base config "
                f"(architecture={getattr(base, 'architecture', 'paper')}, loss={base.loss}) does not use"
            )
    return {name: with_default(params[name], base.value(name)) for name in names}


def with_default(param, value):
    """`param` starting from `value`, clamped into its range (on its grid); None: no start yet."""
    if value is None:  # a loss weight the base leaves at its term's default (`search.start_values`)
        return param
    if param.kind == "choice":
        default = value if value in param.values else param.values[0]
    else:
        default = min(max(value, param.low), param.high)
        if param.step:  # on the grid KerasTuner samples from
            default = param.low + round((default - param.low) / param.step) * param.step
        default = int(default) if param.kind == "int" else float(default)
    return dataclasses.replace(param, default=default)
