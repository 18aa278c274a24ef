"""GAN-TTS training (App. D), one module per concern; this module re-exports their public names.

App. D: "We train all models with a single discriminator step per generator step, but with
doubled learning rate: 1e-4 for the former, compared to 5e-5 for the latter. We use the hinge
loss, a batch size of 1024 and the Adam optimizer with β1 = 0, β2 = 0.999. [...] spectral
normalisation and orthogonal initialisation [...] off-diagonal orthogonal regularisation and
exponential moving averaging to the generator weights with a decay rate of 0.9999 for sampling.
We also use cross-replica BatchNorm."

* :mod:`tts_gan.train_setup` — the models (G, G_ema, D) and Adam optimizers, the stateless
  randomness, the config's data-dependent fields;
* :mod:`tts_gan.train_step` — :class:`GANTrainer`: the D update, the G update (its objective's
  weighted terms) and the EMA update as one compiled, distributed step; K steps per call;
* :mod:`tts_gan.train_input` — the training windows and the fixed evaluation windows;
* :mod:`tts_gan.train_summaries` — logged scalars, EMA samples and the Fig.-4 distance;
* :mod:`tts_gan.train_loop` — :func:`train`: strategies, the NaN guard, checkpoints, resume.
"""

from tts_gan.losses import hinge_d_terms, hinge_g_terms  # App. D's hinge
from tts_gan.train_input import (
    RANDOM_WINDOWS_PER_UTTERANCE,
    crop_windows,
    eval_batch,
    make_train_dataset_fn,
)
from tts_gan.train_loop import (
    WEIGHTS_MANIFEST_SUFFIX,
    NonFiniteLossError,
    TrainResult,
    atomic_write,
    check_finite,
    check_init_data,
    loop_length,
    restore_weights,
    steps_per_loop,
    train,
    weights_digest,
    write_latest_weights,
    write_weights,
)
from tts_gan.train_setup import (
    D_INPUT_DOMAINS,
    build_models,
    d_input_domain,
    fill_excitation_columns,
    make_optimizer,
    resolve_config,
    stateless_normal,
    train_seed,
)
from tts_gan.train_step import MEAN, SUM, GANTrainer
from tts_gan.train_summaries import (
    make_training_distance,
    spectrogram_image,
    write_eval_summaries,
    write_train_scalars,
)

__all__ = [
    "D_INPUT_DOMAINS", "MEAN", "RANDOM_WINDOWS_PER_UTTERANCE", "SUM", "GANTrainer",
    "NonFiniteLossError", "TrainResult", "WEIGHTS_MANIFEST_SUFFIX", "atomic_write",
    "build_models", "check_finite", "check_init_data",
    "crop_windows", "d_input_domain", "eval_batch", "fill_excitation_columns", "hinge_d_terms",
    "hinge_g_terms", "loop_length", "make_optimizer", "make_train_dataset_fn",
    "make_training_distance", "resolve_config", "restore_weights", "spectrogram_image",
    "stateless_normal", "steps_per_loop", "train", "train_seed", "weights_digest",
    "write_eval_summaries", "write_latest_weights", "write_train_scalars", "write_weights",
]
