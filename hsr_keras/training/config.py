"""Every hyper-parameter of a training run in one dataclass, with the two named presets.

A config file (YAML or JSON) holds any subset of the fields; missing ones come from the
preset. The resolved config is saved as JSON beside the weights, and `fit`, `tune` and
the benchmarks all build models from it, so a tuned config is accepted by `fit` unchanged.
"""

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from hsr_keras.choices import ARCHITECTURES, CRITIC_NORMS, INTERPOLATIONS, LOSSES, NOISES, PRECISIONS
from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError

log = logging.getLogger(__name__)


class ConfigError(InputError):
    """A config that cannot be used; the message names the field (and the file) at fault.

    `field` is the name of the offending field, or None when the fault is not one field's.
    """

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


# What each declared field type accepts, in words for the messages.
EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}
# Ranges of the numeric fields: (test, words).
POSITIVE = (lambda v: v > 0, "> 0")
AT_LEAST_1 = (lambda v: v >= 1, ">= 1")
NOT_NEGATIVE = (lambda v: v >= 0, ">= 0")
BELOW_1 = (lambda v: 0 <= v < 1, "in [0, 1)")
RANGES = {
    "filters": AT_LEAST_1,
    "num_res_blocks": NOT_NEGATIVE,
    "upsample_filters": AT_LEAST_1,
    "num_post_blocks": NOT_NEGATIVE,
    "noise_stddev": NOT_NEGATIVE,
    "se_ratio": AT_LEAST_1,
    "critic_filters": AT_LEAST_1,
    "critic_res_blocks": NOT_NEGATIVE,
    "critic_post_blocks": NOT_NEGATIVE,
    "g_learning_rate": POSITIVE,
    "d_learning_rate": POSITIVE,
    "beta_1": BELOW_1,
    "beta_2": BELOW_1,
    "warmup_epochs": NOT_NEGATIVE,
    "min_learning_rate": NOT_NEGATIVE,
    "critic_steps": AT_LEAST_1,
    "ensemble_size": AT_LEAST_1,
    "gp_weight": NOT_NEGATIVE,
    "batch_size": AT_LEAST_1,
    "epochs": AT_LEAST_1,
    "pretrain_epochs": NOT_NEGATIVE,  # and < epochs: checked in Config.__post_init__
    "seed": (lambda v: 0 <= v < 2**32, "in 0 .. 2**32 - 1"),
    "plot_every": AT_LEAST_1,
    "plot_samples": NOT_NEGATIVE,
}
# Fields earlier versions had, still accepted in config files and ignored: why.
RETIRED = {"scale": "the scale is the data's (its manifest's), so a config cannot disagree with it"}
# Fields earlier versions had that now live in loss_weights, and the names the tuner's space gives
# the weights of the ensemble terms: field -> term. A config file may use either form.
LOSS_WEIGHT_FIELDS = {
    "content_weight": "content",
    "adversarial_weight": "adversarial",
    "lattice_weight": "lattice",
    "crps_weight": "crps",
    "spectral_weight": "spectral",
}


def upgrade(values):
    """A config mapping of any version as this version holds it: retired fields dropped, old weights moved.

    `content_weight: 2` becomes `loss_weights: {content: 2}` (an explicit loss_weights entry
    wins). Returns (values, [(field, why) dropped]).
    """
    values = dict(values)
    dropped = [(name, RETIRED[name]) for name in sorted(set(RETIRED) & set(values))]
    for name, _ in dropped:
        values.pop(name)
    moved = {term: values.pop(name) for name, term in LOSS_WEIGHT_FIELDS.items() if name in values}
    if moved:
        explicit = values.get("loss_weights")
        values["loss_weights"] = {**moved, **(explicit if isinstance(explicit, dict) else {})}
    return values, dropped


CHOICES = {
    "architecture": (ARCHITECTURES, ""),
    "skip_interpolation": (INTERPOLATIONS, ""),
    "critic_norm": (CRITIC_NORMS, " (batch norm breaks the per-sample gradient penalty)"),
    "loss": (LOSSES, ""),
    "noise": (NOISES, ""),
    "precision": (PRECISIONS, ""),
}


def _typed(name, kind, value):
    """`value` as field `name` of declared type `kind` holds it; `ConfigError` if it is not one."""
    if kind is float and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool):
        ok = kind is bool
    elif kind is float:
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = EXPECTED[kind] + (" (finite)" if kind is float and isinstance(value, float) else "")
        raise ConfigError(f"{name} must be {expected}. Received: {name}={value!r}", name)
    return value


@dataclass
class Config:
    """Hyper-parameters of the generator, the critic and the training (paper section 5)."""

    # "paper" (Fig. 3), or a baseline of Table 3: "srcnn" (content loss only), "srgan"
    architecture: str = "paper"
    # generator (paper Fig. 3; filters and num_res_blocks also size the SRGAN generator); the
    # scale is the data's (manifest "scale"), not a config field
    filters: int = 128
    num_res_blocks: int = 4
    upsample_filters: int = 256
    num_post_blocks: int = 2
    noise_stddev: float = 0.1
    se_ratio: int = 16
    use_cbam: bool = True
    use_residual: bool = True
    global_skip: bool = False
    skip_interpolation: str = "bilinear"
    # ICNR-initialised sub-pixel convolutions: every position of an LR cell starts alike (layers.ICNR)
    icnr: bool = False
    # Where the noise enters (choices.NOISES): "stem", the paper's Gaussian noise after the stem in
    # training only (std noise_stddev); "texture", layers.NoiseInjection after the stem, every block
    # and every upsampling stage, learned strengths (noise_stddev on the LR grid, 0 on the finer
    # grids at the start), on in inference too: the generator samples (docs/ensembles.md)
    noise: str = "stem"
    # critic (no batch normalisation: the gradient penalty is per sample)
    critic_filters: int = 64
    critic_res_blocks: int = 2
    critic_post_blocks: int = 1
    critic_norm: str = "layer"
    # training (Algorithm 1; two time-scale update rule)
    loss: str = "wgan-gp"
    g_learning_rate: float = 1e-4
    d_learning_rate: float = 1e-3
    beta_1: float = 0.5
    beta_2: float = 0.9
    warmup_epochs: float = 1.0
    min_learning_rate: float = 0.0
    critic_steps: int = 1
    gp_weight: float = 10.0
    # Members K drawn per LR sequence in each generator update (Harris et al. 2022): the content loss
    # scores their mean, the adversarial, lattice and spectral terms each member, the crps term all
    # K together (K >= 2). 1: the paper's single draw. The critic's updates see one member per sequence.
    ensemble_size: int = 1
    # Weights of the generator's loss terms that differ from their defaults (hsr_keras.models.losses.
    # GENERATOR_TERMS: content 1, adversarial 1e-3, lattice 0, crps 0, spectral 0), e.g. {lattice: 0.03}
    loss_weights: dict = field(default_factory=dict)
    batch_size: int = 16
    epochs: int = 100
    # The first pretrain_epochs epochs train the generator on the content loss alone and the
    # critic only starts after them (SRGAN's and ESRGAN's recipe); 0: adversarial from the start.
    pretrain_epochs: int = 0
    precision: str = "float32"
    seed: int = 0
    # callbacks
    plot_every: int = 10
    plot_samples: int = 3
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        """Checks every field: its declared type first, then its range or choices.

        A float field also takes a string that reads as a number (PyYAML reads `1e-4`, without
        a dot, as a string) and an integer; it holds a float afterwards. Int fields take ints
        only (not bools, 1.5 or "4"); bool fields take bools only.
        """
        for spec in dataclasses.fields(self):
            setattr(self, spec.name, _typed(spec.name, spec.type, getattr(self, spec.name)))
        for name, (values, why) in CHOICES.items():
            if getattr(self, name) not in values:
                raise ConfigError(f"{name} must be one of {values}{why}. Received: {self._show(name)}", name)
        for name, (ok, words) in RANGES.items():
            if not ok(getattr(self, name)):
                raise ConfigError(f"{name} must be {words}. Received: {self._show(name)}", name)
        for name, weight in self.loss_weights.items():
            if not isinstance(name, str) or isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ConfigError(
                    f"loss_weights maps term names to numbers. Received: {name!r}: {weight!r}", "loss_weights"
                )
            if not (math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"loss_weights.{name} must be finite and >= 0. Received: {weight!r}", "loss_weights")
        self.loss_weights = {name: float(weight) for name, weight in self.loss_weights.items()}
        if self.noise == "texture" and self.architecture != "paper":
            raise ConfigError(
                f"noise='texture' is a choice of the paper's generator; architecture={self.architecture!r} "
                "has no noise layers. Received: noise='texture'",
                "noise",
            )
        if self.noise == "texture" and self.noise_stddev <= 0:
            raise ConfigError(
                "noise_stddev is the initial strength of the texture noise and must be > 0 with noise='texture'. "
                f"Received: {self._show('noise_stddev')}",
                "noise_stddev",
            )
        if self.loss_weights.get("crps", 0.0) > 0 and self.ensemble_size < 2:
            raise ConfigError(
                "ensemble_size must be >= 2 for the crps loss term (a CRPS of one member is its absolute error). "
                f"Received: {self._show('ensemble_size')} with loss_weights.crps={self.loss_weights['crps']:g}",
                "ensemble_size",
            )
        if self.pretrain_epochs >= self.epochs:
            raise ConfigError(
                f"pretrain_epochs must be < epochs ({self.epochs}): the fine-tuning needs at least one epoch. "
                f"Received: {self._show('pretrain_epochs')}",
                "pretrain_epochs",
            )

    def _show(self, name):
        return f"{name}={getattr(self, name)!r}"

    def value(self, name):
        """Field `name`'s value; for an earlier version's weight field (`adversarial_weight`), its term's override or None."""
        if name in LOSS_WEIGHT_FIELDS:
            return self.loss_weights.get(LOSS_WEIGHT_FIELDS[name])
        return getattr(self, name)

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A copy with `changes`; loss weights (`loss_weights`, or an earlier version's `*_weight` fields) update this one's."""
        changes = upgrade(changes)[0]
        if "loss_weights" in changes:
            changes["loss_weights"] = {**self.loss_weights, **changes["loss_weights"]}
        return dataclasses.replace(self, **changes)

    def save(self, path):
        """Writes the config as JSON, published whole: `path` is the old file or the new one, never half of one."""
        files.write_json(path, self.to_dict())

    def generator_kwargs(self, scale, mean=0.0, std=1.0):
        return dict(
            scale=scale,
            filters=self.filters,
            num_res_blocks=self.num_res_blocks,
            upsample_filters=self.upsample_filters,
            num_post_blocks=self.num_post_blocks,
            noise_stddev=self.noise_stddev,
            se_ratio=self.se_ratio,
            use_cbam=self.use_cbam,
            use_residual=self.use_residual,
            global_skip=self.global_skip,
            skip_interpolation=self.skip_interpolation,
            icnr=self.icnr,
            noise=self.noise,
            mean=mean,
            std=std,
        )

    def critic_kwargs(self, mean=0.0, std=1.0):
        return dict(
            filters=self.critic_filters,
            num_res_blocks=self.critic_res_blocks,
            num_post_blocks=self.critic_post_blocks,
            norm=self.critic_norm,
            use_cbam=self.use_cbam,
            use_residual=self.use_residual,
            mean=mean,
            std=std,
        )


PRESETS = {
    # The paper's sizes and optimiser settings; GPU work.
    "paper": Config(),
    # Minutes on 2 CPU cores: narrow networks, a global skip so a short run learns a residual.
    "demo": Config(
        filters=32,
        num_res_blocks=2,
        upsample_filters=16,
        num_post_blocks=1,
        se_ratio=8,
        global_skip=True,
        skip_interpolation="bicubic",
        # No dotted lattice (docs/texture.md: chosen from 3 seeds x 4 recipes
        # on the demo data; the best MSE among the recipes without a lattice)
        icnr=True,
        loss_weights={"lattice": 0.03},
        critic_filters=16,
        critic_res_blocks=0,
        critic_post_blocks=0,
        g_learning_rate=2e-3,
        d_learning_rate=1e-3,
        warmup_epochs=0.5,
        batch_size=8,
        epochs=10,
        plot_every=5,
    ),
}
# The demo's sizes trained as a calibrated ensemble: the best row of docs/ensembles.md's benchmark
# by its shortfall from the targets (CRPS 0.78 of the content-only MAE, spread-skill 0.71), whose
# ensemble mean is 11 % worse in MSE than the deterministic demo's; hence a preset, not the default.
PRESETS["ensemble"] = PRESETS["demo"].replace(
    noise="texture",
    noise_stddev=1.0,
    ensemble_size=4,
    loss="content",
    loss_weights={"lattice": 0.03, "content": 0.0, "crps": 1.0},
)


def load_config(path=None, preset="paper", **overrides):
    """A preset, updated by a YAML/JSON file and then by explicit overrides (None values ignored).

    Fields of earlier versions in the file or the overrides are upgraded (`upgrade`): a retired
    one is dropped with a note, an old loss weight moves into `loss_weights`.

    Raises `ConfigError` naming the file, and the field or the line, at fault.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {sorted(PRESETS)}. Received: preset={preset!r}")
    values = PRESETS[preset].to_dict()
    from_file, dropped = upgrade(_read_file(path)) if path is not None else ({}, [])
    for name, why in dropped:
        log.info("note: config file %s: %s is not used: %s", path, name, why)
    values.update(from_file)
    values.update(upgrade({k: v for k, v in overrides.items() if v is not None})[0])
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        source = f"config file {path}" if set(unknown) & set(from_file) else "the overrides"
        raise ConfigError(f"unknown config field(s) {unknown} in {source}")
    try:
        return Config(**values)
    except ConfigError as err:
        if err.field is not None and err.field in from_file and overrides.get(err.field) is None:
            raise ConfigError(f"config file {path}: {err}", err.field) from None
        raise


def _read_file(path):
    """The mapping in a YAML (.yaml, .yml) or JSON file; `ConfigError` naming the file and the line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text: {err.reason} at byte {err.start}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ConfigError(f"config file {path}{where}: {problem} (YAML)") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path}, line {err.lineno}: {err.msg} (JSON)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field names to values")
    return data
