"""Parameter counts and generator cost of every experiment config (paper size), for README.

Usage: python benchmarks/model_sizes.py   (prints a Markdown table; ~1 min on 2 cores)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import experiments
from tts_gan import complexity
from tts_gan.discriminator import build_discriminator
from tts_gan.generator import build_and_init, build_generator


def count(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


def main() -> None:
    cfg = experiments.get_config("gan_tts")
    gen = build_and_init(build_generator(cfg.generator))
    print("| generator (Table 2) | value |\n|---|---|")
    print(f"| trainable parameters | {count(gen.trainable_variables):,} |")
    print(f"| layers (k3 convs) | {gen.num_layers()} |")
    print(f"| MACs / output sample (layer walk) | {gen.macs_per_sample():,.0f} |")
    prof = complexity.generator_profiled_macs_per_sample(gen, 400)
    print(f"| MACs / output sample (tf.profiler) | {prof:,.0f} |")
    print("| paper (§5.2) | 638,000 |")
    print(f"| receptive field (frames at 200 Hz) | {gen.receptive_field_frames():.2f} |")
    print()
    print("| config | RWDs | discriminator parameters |\n|---|---|---|")
    for name in experiments.ALL_CONFIGS:
        c = experiments.get_config(name)
        disc = build_discriminator(c.discriminator, feature_dim=c.generator.feature_dim)
        disc.build(None)
        kinds = ", ".join(disc.rwd_names) if len(disc.rwds) <= 2 else f"{len(disc.rwds)} RWDs"
        print(f"| {name} | {kinds} | {count(disc.trainable_variables):,} |")
    print()
    for name in ("tiny", "small"):
        g = build_and_init(build_generator(experiments.get_config(name).generator))
        print(f"{name} generator: {count(g.trainable_variables):,} parameters, "
              f"{g.macs_per_sample():,.0f} MACs/sample")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
