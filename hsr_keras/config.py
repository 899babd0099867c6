"""Every hyper-parameter of a training run in one dataclass, with the two named presets.

A config file (YAML or JSON) holds any subset of the fields; missing ones come from the
preset. The resolved config is saved as JSON beside the weights, and `fit`, `tune` and
the benchmarks all build models from it, so a tuned config is accepted by `fit` unchanged.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from hsr_keras.layers.stride_upsampling import INTERPOLATIONS
from hsr_keras.losses import LOSSES
from hsr_keras.networks import CRITIC_NORMS
from tfrecords_builder.schema import SCALES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ARCHITECTURES = ("paper", "srcnn", "srgan")


@dataclass
class Config:
    """Hyper-parameters of the generator, the critic and the training (paper section 5)."""

    # "paper" (Fig. 3), or a baseline of Table 3: "srcnn" (content loss only), "srgan"
    architecture: str = "paper"
    # generator (paper Fig. 3; filters and num_res_blocks also size the SRGAN generator)
    scale: int = 8
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
    content_weight: float = 1.0
    adversarial_weight: float = 1e-3
    batch_size: int = 16
    epochs: int = 100
    precision: str = "float32"
    seed: int = 0
    # callbacks
    plot_every: int = 10
    plot_samples: int = 3
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        checks = [
            (self.scale in SCALES, f"scale must be one of {SCALES}"),
            (self.architecture in ARCHITECTURES, f"architecture must be one of {ARCHITECTURES}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.skip_interpolation in INTERPOLATIONS, f"skip_interpolation must be one of {INTERPOLATIONS}"),
            (
                self.critic_norm in CRITIC_NORMS,
                f"critic_norm must be one of {CRITIC_NORMS} (batch norm breaks the per-sample gradient penalty)",
            ),
            (
                self.filters > 0 and self.upsample_filters > 0 and self.critic_filters > 0,
                "filter counts must be positive",
            ),
            (self.num_res_blocks >= 0 and self.num_post_blocks >= 0, "block counts must be >= 0"),
            (self.g_learning_rate > 0 and self.d_learning_rate > 0, "learning rates must be positive"),
            (self.critic_steps >= 1, "critic_steps must be >= 1"),
            (self.batch_size >= 1 and self.epochs >= 1, "batch_size and epochs must be >= 1"),
            (min(self.gp_weight, self.content_weight, self.adversarial_weight) >= 0, "loss weights must be >= 0"),
            (self.noise_stddev >= 0, "noise_stddev must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}. Received: {self.short()}")

    def short(self):
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items() if k != "notes")

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    def generator_kwargs(self, mean=0.0, std=1.0):
        return dict(
            scale=self.scale,
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


def load_config(path=None, preset="paper", **overrides):
    """A preset, updated by a YAML/JSON file and then by explicit overrides (None values ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}. Received: preset={preset}")
    values = PRESETS[preset].to_dict()
    if path is not None:
        values.update(_read_file(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} in {path or 'overrides'}")
    return Config(**values)


def _read_file(path):
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of field names to values")
    return data
