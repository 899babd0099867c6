"""The adversarial training model: a generator, a critic, and their alternating updates.

`SuperResolutionGAN` is a `keras.Model` that overrides `train_step` (paper Algorithm 1):
`critic_steps` critic updates on D(G(z)) - D(x) + lambda * (||grad D(x_hat)||_2 - 1)^2 with
x_hat on random lines between real and generated samples, then one generator update on
content_weight * L1 + adversarial_weight * (-D(G(z))). `loss="gan"` swaps in the
cross-entropy GAN of the paper's ablation (no penalty); `loss="content"` trains the
generator alone on the content loss (SRCNN-style baselines; the critic may be None). `test_step` reports the content
loss and the metric card's MSE, PSNR and SSIM in %RH.

The TensorFlow train step lives here; losses are shared `keras.ops` code in `losses.py`.
"""

import keras
from keras import ops

from hsr_keras import losses, metrics


@keras.saving.register_keras_serializable(package="hsr_keras")
class SuperResolutionGAN(keras.Model):
    """Generator + critic trained as a WGAN-GP (or plain GAN) with an L1 content loss.

    Args:
        generator: model mapping LR %RH [B, T, h, w, 1] to HR %RH [B, T, H, W, 1].
        critic: model mapping HR %RH [B, T, H, W, 1] to an unbounded score [B, 1];
            None when compiled with `loss="content"`.
        data_std: standard deviation of the training data (%RH), so the content loss is
            in normalised units whatever the variable's scale.
        seed: seed of the interpolation weights. Defaults to None.

    Example:
        >>> gan = SuperResolutionGAN(build_generator(), build_critic(), data_std=25.0)
        >>> gan.compile(g_optimizer=keras.optimizers.Adam(1e-4),
        ...             d_optimizer=keras.optimizers.Adam(1e-3))
        >>> gan.fit(train_ds, validation_data=val_ds, epochs=10)

    Reference:
        Gulrajani et al. 2017, "Improved training of Wasserstein GANs";
        Li et al. 2024, section 4.2 and Algorithm 1.
    """

    def __init__(self, generator, critic, data_std=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if data_std <= 0:
            raise ValueError(f"data_std must be positive. Received: data_std={data_std}")
        self.generator = generator
        self.critic = critic
        self.data_std = float(data_std)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Both networks come built; the wrapper has no weights of its own.
        self.built = generator.built and (critic is None or critic.built)
        names = ("d_loss", "g_loss", "content_loss", "adversarial_loss", "gradient_penalty", "critic_gap")
        self.train_trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.test_trackers = {
            name: keras.metrics.Mean(name=f"test_{name}") for name in ("content_loss", "mse", "psnr", "ssim")
        }

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(
        self,
        g_optimizer,
        d_optimizer=None,
        loss="wgan-gp",
        gp_weight=10.0,
        content_weight=1.0,
        adversarial_weight=1e-3,
        critic_steps=1,
        **kwargs,
    ):
        """Set the two optimizers (two time-scale update rule) and the loss weights.

        Under the `mixed_float16` policy both optimizers are wrapped in a
        `LossScaleOptimizer`, so small float16 gradients do not underflow.
        """
        if loss not in losses.LOSSES:
            raise ValueError(f"loss must be one of {losses.LOSSES}. Received: loss={loss}")
        if loss != "content" and (self.critic is None or d_optimizer is None):
            raise ValueError(f"loss={loss!r} needs a critic and d_optimizer; only loss='content' trains without")
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be >= 1. Received: critic_steps={critic_steps}")
        if min(gp_weight, content_weight, adversarial_weight) < 0:
            raise ValueError(
                "Loss weights must be >= 0. Received: "
                f"gp_weight={gp_weight}, content_weight={content_weight}, adversarial_weight={adversarial_weight}"
            )
        super().compile(**kwargs)
        if loss == "content":
            d_optimizer = None
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            g_optimizer = _loss_scaled(g_optimizer)
            d_optimizer = d_optimizer and _loss_scaled(d_optimizer)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            self.d_optimizer.build(self.critic.trainable_variables)
        self.loss_name = loss
        self.gp_weight = float(gp_weight)
        self.content_weight = float(content_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.critic_steps = int(critic_steps)

    @property
    def metrics(self):
        return list(self.train_trackers.values()) + list(self.test_trackers.values())

    # -- losses shared by every backend's train step ----------------------------------------

    def critic_objective(self, real_score, fake_score, penalty_grads):
        """Per-sample critic loss and penalty; the penalty is 0 for the plain GAN."""
        adversarial = losses.critic_loss(real_score, fake_score, self.loss_name)
        if self.loss_name == "wgan-gp":
            penalty = losses.gradient_penalty(penalty_grads)
        else:
            penalty = ops.zeros_like(adversarial)
        return adversarial + self.gp_weight * penalty, penalty

    def generator_objective(self, fake, hr, fake_score):
        """Per-sample generator loss, its content and adversarial parts."""
        content = losses.content_l1(fake, hr, self.data_std)
        if fake_score is None:  # loss="content"
            return self.content_weight * content, content, ops.zeros_like(content)
        adversarial = losses.generator_adversarial_loss(fake_score, self.loss_name)
        return self.content_weight * content + self.adversarial_weight * adversarial, content, adversarial

    # -- TensorFlow train step ---------------------------------------------------------------

    def train_step(self, data):
        import tensorflow as tf

        lr, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        hr = ops.cast(hr, "float32")
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        def global_mean(per_sample):
            # Each replica's mean divided by the replica count: the optimizer sums the
            # replicas' gradients, so the result is the gradient of the global-batch mean.
            return ops.mean(per_sample) / replicas

        adversarial_training = self.loss_name != "content"
        logs = {}
        for _ in range(self.critic_steps if adversarial_training else 0):
            fake = ops.cast(self.generator(lr, training=True), "float32")
            with tf.GradientTape() as tape:
                real_score = self.critic(hr, training=True)
                fake_score = self.critic(fake, training=True)
                penalty_grads = None
                if self.loss_name == "wgan-gp":
                    x_hat = losses.interpolate(hr, fake, self.seed_generator)
                    # The inner gradient uses the critic's loss scale as well, so float16
                    # activations' gradients do not underflow; it is unscaled in float32.
                    scale = ops.cast(self.d_optimizer.scale_loss(1.0), "float32")
                    with tf.GradientTape() as penalty_tape:
                        penalty_tape.watch(x_hat)
                        score = ops.cast(self.critic(x_hat, training=True), "float32")
                        scaled_sum = ops.sum(score) * scale
                    penalty_grads = penalty_tape.gradient(scaled_sum, x_hat) / scale
                d_per_sample, penalty = self.critic_objective(real_score, fake_score, penalty_grads)
                d_loss = global_mean(d_per_sample)
                scaled = self.d_optimizer.scale_loss(d_loss)
            grads = tape.gradient(scaled, self.critic.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
            logs.update(d_loss=d_per_sample, gradient_penalty=penalty)

        with tf.GradientTape() as tape:
            fake = self.generator(lr, training=True)
            fake_score = self.critic(fake, training=True) if adversarial_training else None
            g_per_sample, content, adversarial = self.generator_objective(fake, hr, fake_score)
            g_loss = global_mean(g_per_sample)
            scaled = self.g_optimizer.scale_loss(g_loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))

        logs.update(g_loss=g_per_sample, content_loss=content)
        if adversarial_training:
            gap = ops.reshape(real_score, (-1,)) - ops.reshape(fake_score, (-1,))
            logs.update(adversarial_loss=adversarial, critic_gap=ops.cast(gap, "float32"))
        for name, value in logs.items():
            self.train_trackers[name].update_state(value)
        return {name: self.train_trackers[name].result() for name in logs}

    def test_step(self, data):
        lr, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        pred = ops.cast(self.generator(lr, training=False), "float32")
        hr = ops.cast(hr, "float32")
        values = {
            "content_loss": losses.content_l1(pred, hr, self.data_std),
            "mse": metrics.mse(pred, hr),
            "psnr": metrics.psnr(pred, hr),
            "ssim": metrics.ssim(pred, hr),
        }
        for name, value in values.items():
            self.test_trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.test_trackers.items()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "critic": None if self.critic is None else keras.saving.serialize_keras_object(self.critic),
                "data_std": self.data_std,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        if config["critic"] is not None:
            config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
        return cls(**config)


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
