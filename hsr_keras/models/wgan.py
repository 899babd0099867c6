"""The adversarial training model: a generator, a critic, and their alternating updates.

`SuperResolutionGAN` is a `keras.Model` that overrides `train_step` (paper Algorithm 1):
`critic_steps` critic updates on D(G(z)) - D(x) + lambda * (||grad D(x_hat)||_2 - 1)^2 with
x_hat on random lines between real and generated samples, then one generator update on the
weighted sum of `losses.GENERATOR_TERMS` (by default 1 x L1 + 1e-3 x (-D(G(z))), the paper's;
the lattice, crps and spectral terms and any other added with a weight). With `ensemble_size`
K > 1 the generator update draws K members per LR sequence (the batch repeated K times, so
each member gets its own noise): the content loss scores their mean, the adversarial term each
member (Harris et al. 2022), the crps term all of them; the critic updates see one member per
sequence, as with K = 1. `loss="gan"` swaps in the
cross-entropy GAN of the paper's ablation (no penalty); `loss="content"` trains the
generator alone on the content loss (SRCNN-style baselines; the critic may be None). `test_step` reports the content
loss and the metric card's MSE, PSNR and SSIM in %RH.

The model trains under the TensorFlow backend (the default: `tf.GradientTape`,
`tf.distribute`) and under JAX (a stateless, jit-compiled step, as in the Keras guide
"Customizing what happens in fit() with JAX"). Both steps use the same loss code: the
formulas in `losses.py` and the `critic_objective` / `generator_objective` methods.

A generator with extra inputs (`hsr_keras.models.networks`) takes a dict of named inputs
(`lr`, `predictors`, `time_features`, `static`), and the data's `x` is that dict: the generator
gets all of it, the critic the static fields beside each HR field it scores (real, generated
and the gradient penalty's interpolates: the static fields are the same for all three, so they
are not interpolated), and the content and lattice terms the `lr` field.
"""

import keras
from keras import ops

from hsr_keras.choices import LOSSES
from hsr_keras.models import losses
from hsr_keras.scoring import metrics


class SuperResolutionGAN(keras.Model):
    """Generator + critic trained as a WGAN-GP (or plain GAN) with an L1 content loss.

    Args:
        generator: model mapping LR %RH [B, T, h, w, 1] (or a dict of named inputs,
            `lr` among them) to HR %RH [B, T, H, W, 1].
        critic: model mapping HR %RH [B, T, H, W, 1] (with static fields, a dict
            `{"hr", "static"}`) to an unbounded score [B, 1]; None when compiled with
            `loss="content"`.
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
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Both networks come built; the wrapper has no weights of its own.
        self.built = generator.built and (critic is None or critic.built)
        names = (
            "d_loss",
            "g_loss",
            *(f"{name}_loss" for name in losses.GENERATOR_TERMS),
            "gradient_penalty",
            "critic_gap",
        )
        self.train_trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.test_trackers = {
            name: keras.metrics.Mean(name=f"test_{name}") for name in ("content_loss", "mse", "psnr", "ssim", "crps")
        }
        self.ensemble_size = 1

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def interpolate(self, real, fake, replica=0, replicas=1):
        """Random points on lines between real and generated samples, for the gradient penalty.

        `replica` of `replicas`: this replica's part of the global batch (`losses.interpolate`).
        """
        return losses.interpolate(real, fake, self.seed_generator, replica, replicas)

    def compile(
        self,
        g_optimizer,
        d_optimizer=None,
        loss="wgan-gp",
        gp_weight=10.0,
        critic_steps=1,
        loss_weights=None,
        ensemble_size=1,
        **kwargs,
    ):
        """Set the two optimizers (two time-scale update rule) and the loss weights.

        `loss_weights` ({term: weight}) overrides the default weights of `losses.GENERATOR_TERMS`.
        `ensemble_size` (K >= 1) is the number of members drawn per LR sequence in each
        generator update and in `test_step` (whose scores are then those of the members'
        mean, plus their fair CRPS).

        Under the `mixed_float16` policy both optimizers are wrapped in a
        `LossScaleOptimizer`, so small float16 gradients do not underflow.

        `self.optimizer` holds both optimizers (`_Optimizers`): Keras' JAX trainer threads
        `self.optimizer.variables` through its stateless train step, so both optimizers'
        state is part of that step's state.
        """
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise NotImplementedError(
                f"SuperResolutionGAN trains under the tensorflow and jax backends. Received: {keras.backend.backend()}"
            )
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss}")
        if loss != "content" and (self.critic is None or d_optimizer is None):
            raise ValueError(f"loss={loss!r} needs a critic and d_optimizer; only loss='content' trains without")
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be >= 1. Received: critic_steps={critic_steps}")
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0. Received: gp_weight={gp_weight}")
        if isinstance(ensemble_size, bool) or not isinstance(ensemble_size, int) or ensemble_size < 1:
            raise ValueError(f"ensemble_size must be an integer >= 1. Received: ensemble_size={ensemble_size}")
        weights = losses.term_weights(loss_weights)
        for name, term in losses.GENERATOR_TERMS.items():
            if weights[name] and ensemble_size < term.min_members:
                raise ValueError(
                    f"the {name} loss term needs ensemble_size >= {term.min_members}. Received: ensemble_size={ensemble_size}"
                )
        super().compile(optimizer=None, **kwargs)
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
        self.optimizer = _Optimizers(g_optimizer, d_optimizer)
        self.loss_name = loss
        self.gp_weight = float(gp_weight)
        self.loss_weights = weights
        self.critic_steps = int(critic_steps)
        self.ensemble_size = int(ensemble_size)

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

    def generator_objective(self, members, lr, hr, member_scores):
        """Per-sample generator loss and its parts {`<term>_loss`} (`losses.generator_loss`).

        `members`: K tensors [B, T, H, W, 1] (`split_members`); `member_scores`: the critic's [K * B, 1] or None.
        """
        inputs = losses.TermInputs(members, hr, lr, member_scores, self.data_std, self.loss_name)
        return losses.generator_loss(inputs, self.loss_weights)

    def repeat_members(self, x):
        """The batch `x` (a tensor or a dict of them) repeated `ensemble_size` times, member-major `[K * B, ...]`.

        One generator call then draws K members.
        """
        if self.ensemble_size == 1 or x is None:
            return x
        return keras.tree.map_structure(lambda t: ops.concatenate([t] * self.ensemble_size, axis=0), x)

    def split_members(self, fake):
        """`[K * B, ...]` generator outputs as a tuple of K `[B, ...]` members (`(fake,)` itself when K = 1)."""
        if self.ensemble_size == 1:
            return (fake,)
        stacked = ops.reshape(fake, (self.ensemble_size, -1, *ops.shape(fake)[1:]))
        return tuple(stacked[k] for k in range(self.ensemble_size))

    def mean_member_score(self, member_scores):
        """The critic's scores `[K * B, 1]` averaged over the members: `[B, 1]`."""
        if self.ensemble_size == 1:
            return member_scores
        return ops.mean(ops.reshape(ops.cast(member_scores, "float32"), (self.ensemble_size, -1, 1)), axis=0)

    def _update_trackers(self, trackers, values):
        for name, value in values.items():
            trackers[name].update_state(value)
        return {name: trackers[name].result() for name in values}

    def _evaluation_values(self, outputs, hr):
        """The validation scores of the generator's outputs (`[K * B, ...]`: those of the K members' mean)."""
        members = [ops.cast(m, "float32") for m in self.split_members(outputs)]
        pred = losses.member_mean(members)
        hr = ops.cast(hr, "float32")
        values = {
            "content_loss": losses.content_l1(pred, hr, self.data_std),
            "mse": metrics.mse(pred, hr),
            "psnr": metrics.psnr(pred, hr),
            "ssim": metrics.ssim(pred, hr),
        }
        if self.ensemble_size > 1:
            values["crps"] = losses.crps_loss(members, hr, alpha=1.0)  # the fair CRPS in %RH
        return values

    # -- the step each backend's trainer calls --------------------------------------------

    def train_step(self, *args):
        """`tf_train_step(data)` under TensorFlow, `jax_train_step(state, data)` under JAX."""
        if keras.backend.backend() == "jax":
            return self.jax_train_step(*args)
        return _for_multi_worker_reduce(self.tf_train_step(*args))

    def test_step(self, *args):
        """`tf_test_step(data)` under TensorFlow, `jax_test_step(state, data)` under JAX."""
        if keras.backend.backend() == "jax":
            return self.jax_test_step(*args)
        return _for_multi_worker_reduce(self.tf_test_step(*args))

    # -- TensorFlow train step ---------------------------------------------------------------

    def tf_train_step(self, data):
        import tensorflow as tf

        x, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        lr, static = split_inputs(x)
        hr = ops.cast(hr, "float32")
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group if replicas > 1 else 0

        def global_mean(per_sample):
            # Each replica's mean divided by the replica count: the optimizer sums the
            # replicas' gradients, so the result is the gradient of the global-batch mean.
            return ops.mean(per_sample) / replicas

        adversarial_training = self.loss_name != "content"
        logs = {}
        for _ in range(self.critic_steps if adversarial_training else 0):
            fake = ops.cast(self.generator(x, training=True), "float32")
            with tf.GradientTape() as tape:
                real_score = self.critic(critic_inputs(hr, static), training=True)
                fake_score = self.critic(critic_inputs(fake, static), training=True)
                penalty_grads = None
                if self.loss_name == "wgan-gp":
                    x_hat = self.interpolate(hr, fake, *((replica, replicas) if replicas > 1 else ()))
                    # The inner gradient uses the critic's loss scale as well, so float16
                    # activations' gradients do not underflow; it is unscaled in float32.
                    scale = ops.cast(self.d_optimizer.scale_loss(1.0), "float32")
                    with tf.GradientTape() as penalty_tape:
                        penalty_tape.watch(x_hat)
                        score = ops.cast(self.critic(critic_inputs(x_hat, static), training=True), "float32")
                        scaled_sum = ops.sum(score) * scale
                    penalty_grads = penalty_tape.gradient(scaled_sum, x_hat) / scale
                d_per_sample, penalty = self.critic_objective(real_score, fake_score, penalty_grads)
                d_loss = global_mean(d_per_sample)
                scaled = self.d_optimizer.scale_loss(d_loss)
            grads = tape.gradient(scaled, self.critic.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
            logs.update(d_loss=d_per_sample, gradient_penalty=penalty)

        with tf.GradientTape() as tape:
            fake = self.generator(self.repeat_members(x), training=True)
            member_inputs = critic_inputs(fake, self.repeat_members(static))
            fake_score = self.critic(member_inputs, training=True) if adversarial_training else None
            g_per_sample, parts = self.generator_objective(self.split_members(fake), lr, hr, fake_score)
            g_loss = global_mean(g_per_sample)
            scaled = self.g_optimizer.scale_loss(g_loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))

        logs.update(g_loss=g_per_sample, **parts)
        if adversarial_training:
            gap = ops.reshape(real_score, (-1,)) - ops.reshape(self.mean_member_score(fake_score), (-1,))
            logs.update(critic_gap=ops.cast(gap, "float32"))
        return self._update_trackers(self.train_trackers, logs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' build before `fit` under a strategy, on zeros shaped like the data instead of its first batch.

        Keras (3.x, TensorFlow trainer) draws the first batch from a new iterator of the
        distributed dataset and reduces it with `strategy.reduce("MEAN", (lr, hr))`. That
        fails under `MultiWorkerMirroredStrategy` (a tuple is not a `DistributedValues`:
        "Attempt to convert a value (PerReplica...)"), and the extra iterator advances the
        shuffle's seed, so the training batches come in another order than in a one-device
        run. The build needs the shapes only, which the dataset's element spec has.
        """
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and iterator is not None and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = iterator.data_adapter.get_tf_dataset().element_spec
            data_batch = keras.tree.map_structure(
                lambda s: tf.zeros([1 if d is None else d for d in s.shape], s.dtype), spec
            )
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def tf_test_step(self, data):
        x, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        pred = self.generator(self.repeat_members(x), training=False)
        return self._update_trackers(self.test_trackers, self._evaluation_values(pred, hr))

    # -- JAX train step ----------------------------------------------------------------------

    def jax_train_step(self, state, data):
        """One iteration as a pure function of the trainer's state: `(logs, new_state)`.

        `state` holds the values of `self.trainable_variables`, `self.non_trainable_variables`
        (the networks' and the interpolation's seed generator state), `self.optimizer.variables`
        (the generator's optimizer's, then the critic's) and `self.metrics_variables`. The
        networks run through `stateless_call`, gradients come from `jax.grad`, the updates from
        each optimizer's `stateless_apply`; the penalty's gradient with respect to the
        interpolates is a `jax.grad` inside the critic's loss, differentiated again.
        """
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        x, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        lr, static = split_inputs(x)
        hr = ops.cast(hr, "float32")
        at = self._jax_positions()
        g_trainable = _take(trainable, at["g_trainable"])
        d_trainable = _take(trainable, at["d_trainable"])
        split = len(self.g_optimizer.variables)
        g_opt, d_opt = list(optimizer_values[:split]), list(optimizer_values[split:])
        adversarial_training = self.loss_name != "content"

        def run(network, key, weights, non_trainable, x):
            """`network(x, training=True)`; its non-trainable state updated in the model's list."""
            out, new = network.stateless_call(weights, _take(non_trainable, at[key]), x, training=True)
            return out, _put(non_trainable, at[key], new)

        def critic_loss(d_trainable, non_trainable, fake, scale):
            real_score, non_trainable = run(
                self.critic, "d_non_trainable", d_trainable, non_trainable, critic_inputs(hr, static)
            )
            fake_score, non_trainable = run(
                self.critic, "d_non_trainable", d_trainable, non_trainable, critic_inputs(fake, static)
            )
            penalty_grads = None
            if self.loss_name == "wgan-gp":
                x_hat, non_trainable = self._jax_with_state(non_trainable, self.interpolate, hr, fake)

                def scaled_score_sum(points, non_trainable):
                    # Loss-scaled like the TF step, so float16 activations' gradients do not underflow.
                    score, non_trainable = run(
                        self.critic, "d_non_trainable", d_trainable, non_trainable, critic_inputs(points, static)
                    )
                    return ops.sum(ops.cast(score, "float32")) * scale, non_trainable

                grads, non_trainable = jax.grad(scaled_score_sum, has_aux=True)(x_hat, non_trainable)
                penalty_grads = grads / scale
            d_per_sample, penalty = self.critic_objective(real_score, fake_score, penalty_grads)
            return ops.mean(d_per_sample) * scale, (non_trainable, d_per_sample, penalty, real_score)

        def generator_loss(g_trainable, non_trainable, scale):
            members_x = self.repeat_members(x)
            fake, non_trainable = run(self.generator, "g_non_trainable", g_trainable, non_trainable, members_x)
            fake_score = None
            if adversarial_training:
                member_inputs = critic_inputs(fake, self.repeat_members(static))
                fake_score, non_trainable = run(
                    self.critic, "d_non_trainable", d_trainable, non_trainable, member_inputs
                )
            g_per_sample, parts = self.generator_objective(self.split_members(fake), lr, hr, fake_score)
            return ops.mean(g_per_sample) * scale, (non_trainable, g_per_sample, parts, fake_score)

        logs = {}
        for _ in range(self.critic_steps if adversarial_training else 0):
            fake, non_trainable = run(self.generator, "g_non_trainable", g_trainable, non_trainable, x)
            scale = _jax_loss_scale(self.d_optimizer, d_opt)
            grads, aux = jax.grad(critic_loss, has_aux=True)(
                d_trainable, non_trainable, ops.cast(fake, "float32"), scale
            )
            non_trainable, d_per_sample, penalty, real_score = aux
            d_trainable, d_opt = self.d_optimizer.stateless_apply(d_opt, grads, d_trainable)
            logs.update(d_loss=d_per_sample, gradient_penalty=penalty)

        scale = _jax_loss_scale(self.g_optimizer, g_opt)
        grads, aux = jax.grad(generator_loss, has_aux=True)(g_trainable, non_trainable, scale)
        non_trainable, g_per_sample, parts, fake_score = aux
        g_trainable, g_opt = self.g_optimizer.stateless_apply(g_opt, grads, g_trainable)

        logs.update(g_loss=g_per_sample, **parts)
        if adversarial_training:
            gap = ops.reshape(real_score, (-1,)) - ops.reshape(self.mean_member_score(fake_score), (-1,))
            logs.update(critic_gap=ops.cast(gap, "float32"))
        logs, metrics_values = self._jax_update_trackers(self.train_trackers, logs, metrics_values)
        trainable = _put(_put(trainable, at["g_trainable"], g_trainable), at["d_trainable"], d_trainable)
        return logs, (trainable, non_trainable, list(g_opt) + list(d_opt), metrics_values)

    def jax_test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        x, hr, _ = keras.utils.unpack_x_y_sample_weight(data)
        pred, non_trainable = self.stateless_call(trainable, non_trainable, self.repeat_members(x), training=False)
        values = self._evaluation_values(pred, hr)
        logs, metrics_values = self._jax_update_trackers(self.test_trackers, values, metrics_values)
        return logs, (trainable, non_trainable, metrics_values)

    def _jax_positions(self):
        """Where each network's variables sit in the model's variable lists (the state's order)."""
        critic = self.critic.trainable_variables if self.critic is not None else []
        critic_fixed = self.critic.non_trainable_variables if self.critic is not None else []
        return {
            "g_trainable": _positions(self.trainable_variables, self.generator.trainable_variables),
            "d_trainable": _positions(self.trainable_variables, critic),
            "g_non_trainable": _positions(self.non_trainable_variables, self.generator.non_trainable_variables),
            "d_non_trainable": _positions(self.non_trainable_variables, critic_fixed),
        }

    def _jax_with_state(self, non_trainable, fn, *args):
        """`fn(*args)` with the model's non-trainable variables (seed generators) bound to values.

        Returns fn's result and the values after it, so a seed generator drawn from inside
        (`interpolate`) advances through the state and the step stays deterministic.
        """
        mapping = list(zip(self.non_trainable_variables, non_trainable))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = fn(*args)
        return out, [scope.get_current_value(v) for v in self.non_trainable_variables]

    def _jax_update_trackers(self, trackers, values, metrics_values):
        mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._update_trackers(trackers, values)
        return logs, [scope.get_current_value(v) for v in self.metrics_variables]


def split_inputs(x):
    """`(lr, static)` of the generator's inputs: a tensor (static None) or a dict of named inputs."""
    if isinstance(x, dict):
        return x["lr"], x.get("static")
    return x, None


def critic_inputs(hr, static):
    """What the critic scores: the HR field, with the static fields beside it when the data has them."""
    return hr if static is None else {"hr": hr, "static": static}


class _Optimizers:
    """`model.optimizer` of a model that two optimizers train: what Keras' trainers need of it.

    Keras' JAX trainer makes `model.optimizer.variables` the `optimizer_variables` of the state
    it passes through the stateless train step, and writes them back into the variables after
    each epoch (`_get_jax_state` and `jax_state_sync` in `keras/src/backend/jax/trainer.py`);
    `fit` builds `model.optimizer` when `built` is False; Keras' TensorBoard callback logs the
    learning rate of each of its `optimizers` and plots evaluations against its `iterations`.
    Here `variables` lists the generator optimizer's variables, then the critic optimizer's;
    each optimizer was built on its own network's weights in `compile`.
    """

    built = True

    def __init__(self, *optimizers):
        self.optimizers = [optimizer for optimizer in optimizers if optimizer is not None]

    def build(self, variables):
        """Nothing to do: `compile` builds each optimizer on its network's weights."""

    @property
    def variables(self):
        return [variable for optimizer in self.optimizers for variable in optimizer.variables]

    @property
    def iterations(self):
        """Generator updates: one per train step."""
        return self.optimizers[0].iterations


def _for_multi_worker_reduce(logs):
    """A step's logs as Keras' TensorFlow trainer can reduce them across workers: shape [1], not scalars.

    Under a `MultiWorkerMirroredStrategy` spanning several workers Keras (3.x) averages each
    log with `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar ("Invalid
    reduction dimension 0 for input with 0 dimensions"); a [1] value reduces to the scalar
    mean of the workers' values. Elsewhere the logs are returned as they are.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if not (multi_worker and strategy.extended._in_multi_worker_mode()):  # Keras' own test of the case
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def _positions(variables, subset):
    index = {id(v): i for i, v in enumerate(variables)}
    return [index[id(v)] for v in subset]


def _take(values, positions):
    return [values[i] for i in positions]


def _put(values, positions, new):
    values = list(values)
    for i, value in zip(positions, new):
        values[i] = value
    return values


def _jax_loss_scale(optimizer, values):
    """The optimizer's loss scale (1 unless a `LossScaleOptimizer`) read from its state values."""
    with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, values))):
        return ops.cast(optimizer.scale_loss(1.0), "float32")


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
