"""Test session set-up: two logical CPU devices, so MirroredStrategy tests have two replicas.

This must run before TensorFlow initialises its devices, hence at conftest import time.
"""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
with contextlib.suppress(RuntimeError):  # already initialised earlier in this process
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
