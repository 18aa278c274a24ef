"""One ml_collections config per row of Table 1 (+ ``tiny``, ``small``, ``small_dmu8``,
``cpu_sine_mel``, ``cpu_sine_mel_linear``,
``cpu_sine_mel_linear_stem``, ``cpu_harmonic_noise``). Load with
``ml_collections.config_flags`` (``--config=experiments/gan_tts.py``) or :func:`get_config`."""

from __future__ import annotations

import importlib

import ml_collections

TABLE1_ROWS = ("full_d", "crwd_1", "crwd_1_2_4_8_15", "crwd_1_urwd_1", "crwd_1_urwd_1_x5",
               "rwd_1_240x_1_2_4_8_15", "rwd_star_480", "gan_tts")
ALL_CONFIGS = (*TABLE1_ROWS, "tiny", "small", "small_dmu8", "cpu_sine_mel",
               "cpu_sine_mel_linear", "cpu_sine_mel_linear_stem", "cpu_harmonic_noise",
               "cpu_harmonic_noise_adv")


def get_config(name: str) -> ml_collections.ConfigDict:
    """The config of experiment ``name`` (a file in this folder)."""
    if name not in ALL_CONFIGS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(ALL_CONFIGS)}")
    return importlib.import_module(f"experiments.{name}").get_config()
