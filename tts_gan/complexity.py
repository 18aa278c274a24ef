"""Operation counts from TensorFlow's own profiler, independent of the layer-by-layer count in
:meth:`tts_gan.generator.Generator.macs_per_sample` (used to check §5.2's 0.638 MFLOP/sample)."""

from __future__ import annotations

import tensorflow as tf


def profiled_float_ops(concrete_fn) -> dict[str, int]:
    """FLOPs per op type of a traced ``tf.function`` graph (``tf.profiler`` float_operation).

    A multiply-accumulate counts as 2 FLOPs, as in TensorFlow's registered op statistics.
    """
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = (option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build())
    prof = model_analyzer.profile(concrete_fn.graph, cmd="op", options=opts)
    return {node.name: int(node.total_float_ops) for node in prof.children}


def generator_profiled_macs_per_sample(gen, frames: int = 400) -> float:
    """Convolution MACs per output sample of ``gen`` at batch 1, as counted by the profiler."""
    fn = tf.function(lambda f, z: gen(f, z, training=False)).get_concrete_function(
        tf.TensorSpec([1, frames, gen.feature_dim]), tf.TensorSpec([1, gen.noise_dim]))
    flops = profiled_float_ops(fn)
    conv_flops = sum(v for k, v in flops.items() if k.startswith("Conv"))
    return conv_flops / 2 / (frames * gen.samples_per_frame)
