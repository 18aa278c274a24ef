"""Training set-up: the models and optimizers of App. D, the step's randomness and the
config's data-dependent fields.

App. D: "Adam optimizer with β1 = 0, β2 = 0.999 [...] spectral normalisation and orthogonal
initialisation [...] exponential moving averaging to the generator weights": G, its EMA copy
G_ema and the discriminator ensemble D are built here with their initial weights a function
of ``train.seed``; the train step (:mod:`tts_gan.train_step`) updates them.
"""

from __future__ import annotations

import contextlib
import math

import keras
import ml_collections
import tensorflow as tf

from tts_gan import mulaw, schema
from tts_gan.discriminator import DiscriminatorEnsemble, build_discriminator
from tts_gan.generator import Generator, build_and_init, build_generator, fill_output_mu

# ----------------------------------------------------------------------------------------------
# Models and optimizers
# ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _dtype_policy(name: str):
    """Temporarily sets Keras' global dtype policy ("" = float32) while layers are created."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name or "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def build_models(config: ml_collections.ConfigDict, feature_dim: int, num_speakers: int
                 ) -> tuple[Generator, Generator, DiscriminatorEnsemble]:
    """(G, G_ema, D) with all variables created; G_ema starts as an exact copy of G.

    Call inside ``strategy.scope()`` for distributed training. ``config.train.mixed_precision``
    ("mixed_bfloat16") sets the layers' dtype policy (variables stay float32). The initial
    weights (orthogonal kernels, App. D; SN vectors) are a function of ``config.train.seed``:
    Keras' global seeds (Python, NumPy, TensorFlow, Keras) are set from it first.
    """
    keras.utils.set_random_seed(train_seed(config))
    with _dtype_policy(config.train.get("mixed_precision", "")):
        gen = build_and_init(build_generator(config.generator, feature_dim, num_speakers))
        ema = build_and_init(build_generator(config.generator, feature_dim, num_speakers))
        disc = build_discriminator(config.discriminator, feature_dim)
        disc.build(None)
    _check_same_structure(gen.weights, ema.weights)
    for dst, src in zip(ema.weights, gen.weights, strict=True):
        dst.assign(src.value)
    return gen, ema, disc


def train_seed(config: ml_collections.ConfigDict) -> int:
    """``config.train.seed``: an integer in [0, 2³¹) (seeds the initial weights, z, the RWD
    windows and the input order)."""
    seed = config.train.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"config train.seed={seed!r}: expected an integer in [0, 2**31)")
    return seed


def _check_same_structure(a: list, b: list) -> None:
    if len(a) != len(b) or any(tuple(x.shape) != tuple(y.shape)
                                   for x, y in zip(a, b, strict=False)):
        raise RuntimeError("G and G_ema have different variable structures")


class _PreReducedAdam(keras.optimizers.Adam):
    """Adam that does not all-reduce gradients again: the train step has already summed them
    over replicas (once) to log the global gradient norm."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def make_optimizer(lr: float, cfg: ml_collections.ConfigDict, name: str) -> keras.Optimizer:
    """Adam(β1 = 0, β2 = 0.999) of App. D (ε from ``train.adam_epsilon``)."""
    return _PreReducedAdam(learning_rate=lr, beta_1=cfg.adam_beta1, beta_2=cfg.adam_beta2,
                           epsilon=cfg.get("adam_epsilon", 1e-8), name=name)


# ----------------------------------------------------------------------------------------------
# Randomness
# ----------------------------------------------------------------------------------------------

def stateless_normal(shape: list[int], seed: tf.Tensor) -> tf.Tensor:
    """N(0, 1) samples from a stateless seed that are the same with and without XLA.

    ``tf.random.stateless_normal`` (and float ``stateless_uniform``) give different numbers
    under ``jit_compile`` than in TF kernels on CPU; Philox *integer* draws agree. So: 24-bit
    uniform integers → uniforms in (0, 1) → Box–Muller.
    """
    bits = tf.random.stateless_uniform([2, *shape], seed, 0, 1 << 24, dtype=tf.int32,
                                       alg="philox")
    u = (tf.cast(bits, tf.float32) + 0.5) / float(1 << 24)
    return tf.sqrt(-2.0 * tf.math.log(u[0])) * tf.cos(2.0 * math.pi * u[1])


# ----------------------------------------------------------------------------------------------
# Config: the data-dependent fields
# ----------------------------------------------------------------------------------------------

def resolve_config(config: ml_collections.ConfigDict, data_dir: str) -> ml_collections.ConfigDict:
    """Fills in the data-dependent fields (feature dim, speakers, data dir) from the manifest;
    checks ``data.mu``, the µ-law the generator models (App. C; the prepared audio is re-encoded
    when it differs from the manifest's), and ``discriminator.input_mu``."""
    manifest = schema.load_manifest(data_dir)
    config = ml_collections.ConfigDict(config.to_dict())
    config.data.mu = mulaw.check_mu(config.data.get("mu", manifest.mu), "config data.mu")
    d_mu = config.discriminator.get("input_mu", 0.0)
    if d_mu != 0:
        config.discriminator.input_mu = mulaw.check_mu(d_mu, "config discriminator.input_mu "
                                                       "(0 = the generator's µ)")
    d_input_domain(config)
    config.data.data_dir = data_dir
    exc = config.generator.get("excitation")
    if exc is not None and exc.get("enabled", False):
        fill_excitation_columns(exc, manifest, data_dir)
    fill_output_mu(config)
    config.generator.feature_dim = manifest.feature_dim
    config.generator.num_speakers = manifest.num_speakers
    if not config.data.get("compression"):
        config.data.compression = manifest.compression
    return config


D_INPUT_DOMAINS = ("mulaw", "linear")


def d_input_domain(config: ml_collections.ConfigDict) -> str:
    """``discriminator.input_domain`` checked: "mulaw" (G's µ-law, or ``input_mu``'s: the
    paper's view when ``input_mu`` is 0) or "linear" (the decoded waveform; ``input_mu``
    must then be 0)."""
    dcfg = config.discriminator
    domain = str(dcfg.get("input_domain", "mulaw"))
    if domain not in D_INPUT_DOMAINS:
        raise ValueError(f"config discriminator.input_domain={domain!r}: expected one of "
                         f"{D_INPUT_DOMAINS}")
    if domain == "linear" and dcfg.get("input_mu", 0.0):
        raise ValueError("config discriminator.input_domain='linear' decodes G's µ-law: "
                         f"discriminator.input_mu must be 0, got {dcfg.input_mu}")
    return domain


def fill_excitation_columns(exc: ml_collections.ConfigDict, manifest: schema.Manifest,
                            data_dir: str) -> None:
    """Sets ``generator.excitation``'s column indices and normalisation statistics from the
    manifest's ``log_f0`` and ``vuv`` feature blocks (a clear error when there are none)."""
    blocks = {b.name: b for b in manifest.feature_breakdown}
    missing = [n for n in ("log_f0", "vuv") if n not in blocks or blocks[n].size != 1]
    if missing:
        raise ValueError(f"config generator.excitation needs one-column 'log_f0' and 'vuv' "
                         f"feature blocks in {data_dir}/{schema.MANIFEST_NAME}; missing "
                         f"{missing} (found {sorted(blocks)})")
    lf0, vuv = blocks["log_f0"].start, blocks["vuv"].start
    exc.lf0_index, exc.vuv_index = int(lf0), int(vuv)
    exc.lf0_mean, exc.lf0_std = float(manifest.mean[lf0]), float(manifest.std[lf0])
    exc.vuv_mean, exc.vuv_std = float(manifest.mean[vuv]), float(manifest.std[vuv])
