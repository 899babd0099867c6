"""The named choices of a training run, in one place that imports nothing heavy.

`hsr_keras.training.config` checks a config against these; the losses, networks and layers that
implement them import them from here; and the command lines offer them in `--help`
without importing Keras or TensorFlow (so that `--help` answers at once).
"""

# Losses of `SuperResolutionGAN` (hsr_keras.models.losses): the two adversarial ones, and "content",
# the generator alone on the content loss (SRCNN, and a pre-training baseline).
ADVERSARIAL_LOSSES = ("wgan-gp", "gan")
LOSSES = ADVERSARIAL_LOSSES + ("content",)

# Where the generator's noise enters (hsr_keras.models.networks.build_generator): "stem", the paper's
# Gaussian noise after the stem, in training only; "texture", `NoiseInjection` with learned
# per-channel strengths after the stem, every residual block and every upsampling stage, in
# training and inference (the generator is a sampler).
NOISES = ("stem", "texture")

# Interpolations of the generator's global skip (hsr_keras.layers.stride_upsampling).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")

# Normalisations of a residual block (hsr_keras.layers.residual_block), and the critic's: no
# batch norm, whose statistics would couple the samples of the per-sample gradient penalty.
NORMS = ("batch", "layer", "none")
CRITIC_NORMS = ("layer", "none")

# Keras precision policies a run may set.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

# Generator architectures: "paper" (Fig. 3), or a baseline of Table 3: "srcnn", "srgan".
ARCHITECTURES = ("paper", "srcnn", "srgan")

# Distribution strategies of `hsr_keras.training.trainer.train`: "mirrored" uses every visible GPU
# (or logical CPU device) of one process; "multi-worker" trains across processes (hosts), as the
# TF_CONFIG environment variable describes them (both tf.distribute: TensorFlow); "data-parallel"
# is Keras' DataParallel over every JAX device of one process, or of several processes as the
# KERAS_DISTRIBUTION_* environment variables describe them (JAX) (docs/scale.md).
STRATEGIES = ("default", "mirrored", "multi-worker", "data-parallel")

# KerasTuner search algorithms of `python -m hsr_keras.tune`, and the validation logs of
# `SuperResolutionGAN.test_step` a search may optimise, with the direction that improves them.
TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = {"val_content_loss": "min", "val_mse": "min", "val_psnr": "max", "val_ssim": "max"}
