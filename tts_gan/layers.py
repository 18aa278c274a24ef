"""Layers of GAN-TTS: spectrally normalised convs/dense, masked cross-replica (conditional) BN.

App. D: "we use spectral normalisation and orthogonal initialisation in both the generator and
discriminator(s) [...] We also use cross-replica BatchNorm [...] and standing statistics during
sampling." §3.2: "Convolutions are preceded by Conditional Batch Normalisation [...] conditioned
on the linear embeddings of the noise term z [...] The embeddings are different for each
BatchNorm instance." App. A.1: the input of every convolution is masked.

Why not ``keras.layers.SpectralNormalization``/``BatchNormalization`` (see BUILD_NOTES.md):
Keras' SN *projects* (it assigns W/σ back into the kernel in the forward pass, so gradients
never flow through σ, and any training-mode forward pass rewrites the weights); Miyato et al.
and BigGAN *reparameterise* W_SN = W/σ(W). Keras' BN ignores ``synchronized=True`` as soon as a
mask is given, and has no conditional gain/bias or standing statistics.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import keras
import tensorflow as tf

from tts_gan import ops

# State that every replica computes identically (all-reduced inputs): first replica's write wins.
_REPLICATED_STATE = "only_first_replica"

# How the gradient of a dilated convolution (dilation > 1) is computed; see dilated_conv1d.
# Environment variable TTS_GAN_DILATED_CONV_GRADIENT, read when a layer is traced:
#   "auto" (default): "native" when TensorFlow's oneDNN CPU ops are on, else "space_to_batch";
#   "native": TensorFlow's own gradient of the dilated Conv2D (Conv2DBackpropFilter/-Input with
#       dilations): oneDNN, XLA, GPU; TF 2.21's Eigen CPU kernels refuse dilations > 1;
#   "space_to_batch": the gradient of the same convolution written as space_to_batch_nd →
#       undilated conv → batch_to_space_nd (tf.nn.convolution's dilated form), which every
#       CPU kernel supports. The forward pass is the native dilated conv in every mode.
DILATED_CONV_GRADIENT_ENV = "TTS_GAN_DILATED_CONV_GRADIENT"
DILATED_CONV_GRADIENTS = ("auto", "native", "space_to_batch")


@functools.cache
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU ops in this process (TF_ENABLE_ONEDNN_OPTS, or
    TF's default: on only for CPUs with AVX512_VNNI/AVX512_BF16/AVX_VNNI/AMX, so off on an
    AVX2-only AMD EPYC or Xeon)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def dilated_conv_gradient() -> str:
    """The resolved gradient formulation of dilated convs: "native" or "space_to_batch"."""
    mode = os.environ.get(DILATED_CONV_GRADIENT_ENV, "auto") or "auto"
    if mode not in DILATED_CONV_GRADIENTS:
        raise ValueError(f"{DILATED_CONV_GRADIENT_ENV}={mode!r}: expected one of "
                         f"{', '.join(DILATED_CONV_GRADIENTS)}")
    if mode == "auto":
        return "native" if onednn_enabled() else "space_to_batch"
    return mode


def dilated_conv1d(x: tf.Tensor, kernel: tf.Tensor, dilation: int,
                   gradient: str | None = None) -> tf.Tensor:
    """'SAME'-padded stride-1 conv1d of ``x`` ``[B, T, C_in]`` with ``kernel`` ``[k, C_in,
    C_out]`` dilated by ``dilation``.

    Forward: the native dilated conv (tf.nn.conv1d) in every mode, so inference, SavedModel and
    TFLite graphs are those of a plain conv. Gradient (``gradient``, default
    :func:`dilated_conv_gradient`): "native" is TF's; "space_to_batch" (tf.custom_gradient)
    differentiates tf.nn.convolution's form of the same function, y = batch_to_space(conv(
    space_to_batch(x, d), kernel), d) (each of the d phases of the signal convolved with the
    undilated kernel: the same k·C_in products per output, summed in another order), because
    TF 2.21's Eigen CPU Conv2DBackpropFilter/-Input refuse dilations > 1 ("Current CPU
    implementations do not yet support dilation rates larger than 1"), which stopped every
    training step with oneDNN off (#26)."""
    def forward(x, kernel):
        return tf.nn.conv1d(x, kernel, stride=1, padding="SAME", dilations=dilation)

    def space_to_batch(x, kernel):
        return tf.nn.convolution(x, kernel, padding="SAME", dilations=[dilation])

    return _dilated(forward, space_to_batch, (x, kernel), dilation, gradient)


def _dilated(forward: Callable[..., tf.Tensor], space_to_batch: Callable[..., tf.Tensor],
             args: tuple[tf.Tensor, ...], dilation: int, gradient: str | None) -> tf.Tensor:
    """``forward(*args)``, differentiated as ``space_to_batch(*args)`` (the same function in
    tf.nn.convolution's form) when dilation > 1 and the gradient is "space_to_batch"
    (:func:`dilated_conv1d`)."""
    if dilation == 1:
        return forward(*args)
    gradient = gradient or dilated_conv_gradient()
    if gradient == "native":
        return forward(*args)
    if gradient != "space_to_batch":
        raise ValueError(f"dilated conv gradient {gradient!r}: expected native or space_to_batch")

    @tf.custom_gradient
    def conv(*xs):
        def grad(dy):
            with tf.GradientTape() as tape:
                tape.watch(list(xs))
                y_s2b = space_to_batch(*xs)
            return tape.gradient(y_s2b, list(xs), output_gradients=dy)

        return forward(*xs), grad

    return conv(*args)


def _l2_normalize(x: tf.Tensor, eps: float = 1e-12) -> tf.Tensor:
    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x)), eps))


def power_iteration(w: tf.Tensor, u: tf.Tensor, iterations: int) -> tf.Tensor:
    """``iterations`` power-iteration steps for the top right-singular vector of ``w``
    ``[fan_in, out]`` from the estimate ``u`` ``[out]`` (Miyato et al., 2018)."""
    u = _l2_normalize(u)
    for _ in range(iterations):
        v = _l2_normalize(tf.linalg.matvec(w, u))
        u = _l2_normalize(tf.linalg.matvec(w, v, transpose_a=True))
    return u


class CheckpointListsMixin:
    """Puts layers held in Python lists into ``tf.train.Checkpoint``'s object graph.

    Keras 3 (TF backend) turns ``self.blocks = [...]`` into a ``TrackedList`` that it converts
    for SavedModel export only: for checkpoints such lists are dropped, so ``tf.train.Checkpoint
    (generator=G)`` silently saved conv_in/conv_out and none of the GBlocks. Each list item
    becomes the child ``<attr>-<index>``.
    """

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            for attr in getattr(self, "_tracked", ()):
                value = getattr(self, attr, None)
                if isinstance(value, list | tuple):
                    for i, item in enumerate(value):
                        if isinstance(item, tf.__internal__.tracking.Trackable):
                            children.setdefault(f"{attr}-{i}", item)
        return children


class _SpectralNormKernel(keras.layers.Layer):
    """Base: an orthogonally initialised kernel, optional bias and spectral normalisation.

    σ(W) is estimated by power iteration on the ``[fan_in, out]`` view of the kernel with a
    persistent right-singular-vector estimate ``sn_u`` (Miyato et al., 2018). In training,
    ``power_iterations`` steps update ``sn_u``; σ = ‖W u‖ (u, v held constant for the gradient,
    so ∂σ/∂W = v uᵀ as in the paper). In inference σ is computed from the stored ``sn_u``.
    """

    def __init__(self, units: int, *, use_bias: bool = True, spectral_norm: bool = True,
                 power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = use_bias
        self.spectral_norm = spectral_norm
        self.power_iterations = int(power_iterations)

    # Leading kernel dimensions before [in, out]: (kernel_size,) for a conv, () for a dense layer.
    kernel_prefix: tuple[int, ...] = ()

    def build(self, input_shape):
        in_dim = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_prefix, in_dim, self.units),
            initializer=keras.initializers.Orthogonal(), autocast=False)
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer="zeros",
                                     autocast=False) if self.use_bias else None)
        if self.spectral_norm:
            self.sn_u = self.add_weight(
                name="sn_u", shape=(self.units,), trainable=False, autocast=False,
                initializer=keras.initializers.RandomNormal(stddev=1.0),
                aggregation=_REPLICATED_STATE)

    def sigma(self, training: bool = False) -> tf.Tensor:
        """Top singular value estimate of the kernel's matrix view (updates u in training)."""
        w = ops.matrix_view(tf.convert_to_tensor(self.kernel.value))
        u = tf.convert_to_tensor(self.sn_u.value)
        u = power_iteration(w, u, self.power_iterations if training else 0)
        if training:
            u = tf.stop_gradient(u)
            self.sn_u.assign(u)
        return tf.norm(tf.linalg.matvec(w, u))

    # Set by :meth:`fold_spectral_norm` (inference only): ``kernel`` holds W / σ(W) itself.
    spectral_norm_folded: bool = False

    def effective_kernel(self, training: bool = False) -> tf.Tensor:
        """The kernel the layer applies: W / σ(W) with SN, W otherwise (float32)."""
        kernel = tf.convert_to_tensor(self.kernel.value)
        if self.spectral_norm_folded:
            if training:
                raise RuntimeError(f"{self.name}: spectral norm is folded into the kernel "
                                   "(an inference-only form, fold_spectral_norm); it cannot "
                                   "run in training mode")
            return kernel
        if not self.spectral_norm:
            return kernel
        return kernel / self.sigma(training)

    def fold_spectral_norm(self, assign: bool = True) -> None:
        """Inference-only form: stores the inference kernel W / σ(W) (σ from the stored
        ``sn_u``, as :meth:`effective_kernel` computes it) in ``kernel``, so that a served
        graph reads it instead of recomputing σ and dividing the kernel on every call. The
        variables keep their names and shapes (``sn_u`` stays). ``assign=False`` only marks
        the layer, for a kernel that already holds W / σ (a folded export's variables)."""
        if not self.spectral_norm or self.spectral_norm_folded:
            return
        if assign:
            self.kernel.assign(self.effective_kernel(False))
        self.spectral_norm_folded = True

    def _bias(self, dtype) -> tf.Tensor | None:
        return None if self.bias is None else tf.cast(self.bias.value, dtype)


class SNConv1D(_SpectralNormKernel):
    """'SAME'-padded dilated 1-D convolution with SN and orthogonal init (stride 1).

    ``call(x, seq_mask)`` multiplies the input by the 0/1 mask first (App. A.1), so that with a
    zero-padded batch the valid region sees exactly the zeros it would see alone. Dilated
    convs differentiate as :func:`dilated_conv1d` chooses (TTS_GAN_DILATED_CONV_GRADIENT).
    """

    def __init__(self, filters: int, kernel_size: int = 3, dilation: int = 1, **kwargs):
        super().__init__(filters, **kwargs)
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)

    @property
    def kernel_prefix(self) -> tuple[int, ...]:
        return (self.kernel_size,)

    def call(self, x, seq_mask=None, training=None):
        x = ops.apply_mask(x, seq_mask)
        kernel = tf.cast(self.effective_kernel(bool(training)), x.dtype)
        bias = self._bias(x.dtype)
        if not training and bias is not None:
            return conv1d_bias(x, kernel, self.dilation, bias)
        y = dilated_conv1d(x, kernel, self.dilation)
        return y if bias is None else y + bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)


def conv1d_bias(x: tf.Tensor, kernel: tf.Tensor, dilation: int, bias: tf.Tensor,
                gradient: str | None = None) -> tf.Tensor:
    """Inference form of :func:`dilated_conv1d` plus ``bias``: the same 'SAME' conv as a Conv2D
    over ``[B, 1, T, C]`` followed by BiasAdd before the squeeze, the pattern Grappler's
    remapper fuses into one kernel that adds the bias as it writes each output (with the
    squeeze first, as in ``tf.nn.conv1d``, the bias is one more pass over the signal).
    Differentiable as :func:`dilated_conv1d` is (a D evaluated in inference mode inside G's
    step is differentiated through it)."""
    def forward(x, kernel, bias):
        y = tf.nn.conv2d(tf.expand_dims(x, 1), tf.expand_dims(kernel, 0), strides=1,
                         padding="SAME", dilations=[1, dilation])
        return tf.squeeze(tf.nn.bias_add(y, bias), axis=1)

    def space_to_batch(x, kernel, bias):
        return tf.nn.convolution(x, kernel, padding="SAME", dilations=[dilation]) + bias

    return _dilated(forward, space_to_batch, (x, kernel, bias), dilation, gradient)


class SNDense(_SpectralNormKernel):
    """Fully connected layer with SN and orthogonal init."""

    def call(self, x, training=None):
        kernel = tf.cast(self.effective_kernel(bool(training)), x.dtype)
        y = tf.matmul(x, kernel)
        bias = self._bias(x.dtype)
        return y if bias is None else y + bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)


class MaskedSyncBatchNorm(keras.layers.Layer):
    """Batch normalisation without affine parameters, masked and cross-replica (App. A.1, D).

    Training: per-channel mean/variance over the valid (mask = 1) positions of the *global*
    batch: the sums Σx, Σx², Σmask are all-reduced over replicas (cross-replica BN), so the
    statistics equal those of the un-split batch. Inference: ``moving_mean``/``moving_variance``,
    which are either exponential moving averages or standing statistics (``accumulate_standing``
    mode: each training-mode pass adds its batch statistics to accumulators instead, and
    :meth:`finalize_standing` installs their average, as in BigGAN).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-4, cross_replica: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.cross_replica = cross_replica
        self.accumulate_standing = False

    def build(self, input_shape):
        c = (int(input_shape[-1]),)

        def state(name, shape, init):
            return self.add_weight(name=name, shape=shape, initializer=init, trainable=False,
                                   autocast=False, aggregation=_REPLICATED_STATE)

        self.moving_mean = state("moving_mean", c, "zeros")
        self.moving_variance = state("moving_variance", c, "ones")
        self.standing_mean_sum = state("standing_mean_sum", c, "zeros")
        self.standing_variance_sum = state("standing_variance_sum", c, "zeros")
        self.standing_count = state("standing_count", (), "zeros")

    def batch_moments(self, x: tf.Tensor,
                      seq_mask: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        """Masked mean/variance over batch and time, summed over all replicas."""
        x = tf.cast(x, tf.float32)
        if seq_mask is None:
            count = tf.cast(tf.shape(x)[0] * tf.shape(x)[1], tf.float32)
            s1 = tf.reduce_sum(x, axis=[0, 1])
            s2 = tf.reduce_sum(tf.square(x), axis=[0, 1])
        else:
            m = tf.cast(seq_mask, tf.float32)
            count = tf.reduce_sum(m)
            s1 = tf.reduce_sum(x * m, axis=[0, 1])
            s2 = tf.reduce_sum(tf.square(x) * m, axis=[0, 1])
        ctx = tf.distribute.get_replica_context()
        if self.cross_replica and ctx is not None and ctx.num_replicas_in_sync > 1:
            s1, s2, count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [s1, s2, count])
        count = tf.maximum(count, 1.0)
        mean = s1 / count
        variance = tf.maximum(s2 / count - tf.square(mean), 0.0)
        return mean, variance

    def call(self, x, seq_mask=None, training=None):
        if training:
            mean, variance = self.batch_moments(x, seq_mask)
            if self.accumulate_standing:
                self.standing_mean_sum.assign_add(mean)
                self.standing_variance_sum.assign_add(variance)
                self.standing_count.assign_add(1.0)
            else:
                m = self.momentum
                self.moving_mean.assign(m * self.moving_mean.value + (1.0 - m) * mean)
                self.moving_variance.assign(
                    m * self.moving_variance.value + (1.0 - m) * variance)
            inv = tf.math.rsqrt(variance + self.epsilon)
        else:
            mean, inv = self.frozen_statistics()
        y = (tf.cast(x, tf.float32) - mean) * inv
        return tf.cast(y, x.dtype)

    def frozen_statistics(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Inference's mean and 1/√(variance + ε) per channel (moving or standing)."""
        variance = tf.convert_to_tensor(self.moving_variance.value)
        return (tf.convert_to_tensor(self.moving_mean.value),
                tf.math.rsqrt(variance + self.epsilon))

    def reset_standing(self) -> None:
        for v in (self.standing_mean_sum, self.standing_variance_sum):
            v.assign(tf.zeros_like(v.value))
        self.standing_count.assign(0.0)

    def finalize_standing(self) -> None:
        """Installs the averaged accumulated statistics as the inference statistics."""
        n = float(self.standing_count.numpy())
        if n <= 0:
            raise RuntimeError(f"{self.name}: no standing statistics were accumulated")
        self.moving_mean.assign(self.standing_mean_sum.value / n)
        self.moving_variance.assign(self.standing_variance_sum.value / n)

    def compute_output_shape(self, input_shape):
        return input_shape


class ConditionalBatchNorm(keras.layers.Layer):
    """Conditional BN (Dumoulin et al., 2017b; §3.2): BN(x)·(1 + γ(y)) + β(y).

    γ and β are this instance's own spectrally normalised linear embeddings of the conditioning
    vector y = z (single speaker) or [z; one-hot speaker] (multi-speaker), as in BigGAN.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-4, spectral_norm: bool = True,
                 cross_replica: bool = True, cond_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.bn = MaskedSyncBatchNorm(momentum, epsilon, cross_replica, name="bn")
        self._sn = spectral_norm
        self.cond_dim = cond_dim
        self.gain = None
        self.shift = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.bn.build(input_shape)
        self.gain = SNDense(channels, use_bias=False, spectral_norm=self._sn, name="gain")
        self.shift = SNDense(channels, use_bias=False, spectral_norm=self._sn, name="shift")
        if self.cond_dim:
            self.gain.build((None, self.cond_dim))
            self.shift.build((None, self.cond_dim))

    def call(self, x, cond, seq_mask=None, training=None):
        if not training:
            return self._inference(x, cond)
        h = self.bn(x, seq_mask=seq_mask, training=training)
        cond = tf.cast(cond, h.dtype)
        gamma = 1.0 + self.gain(cond, training=training)
        beta = self.shift(cond, training=training)
        return h * gamma[:, None, :] + beta[:, None, :]

    def _inference(self, x, cond):
        """The same function with the frozen statistics: the normalisation and the affine
        folded into one scale and shift per example and channel, computed at the
        conditioning's size, so the signal gets two passes (``x·s + t``) instead of four
        (subtract, scale, gain, shift); the served generator's largest elementwise cost."""
        mean, inv = self.bn.frozen_statistics()
        # the embeddings in float32 (under a mixed policy Keras computes them in bfloat16)
        gain = tf.cast(self.gain(cond, training=False), tf.float32)
        scale = inv * (1.0 + gain)  # [B, C]
        shift = tf.cast(self.shift(cond, training=False), tf.float32) - mean * scale
        y = tf.cast(x, tf.float32) * scale[:, None, :] + shift[:, None, :]
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
