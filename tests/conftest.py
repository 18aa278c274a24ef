"""Test session set-up: two logical CPU devices, so MirroredStrategy tests have two replicas.

This must run before TensorFlow initialises its devices, hence at conftest import time.

``--intra-op-threads=N`` runs TensorFlow's kernels with N threads (also in the subprocesses the
tests start, through TF_NUM_INTRAOP_THREADS): another thread count splits sums differently, one
way to provoke the float32 rounding that tests/float32_bounds.py bounds. oneDNN on/off must be
chosen before TensorFlow is imported: run pytest with TF_ENABLE_ONEDNN_OPTS=0 or 1.
"""

import contextlib
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
with contextlib.suppress(RuntimeError):  # already initialised earlier in this process
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_addoption(parser):
    parser.addoption("--intra-op-threads", type=int, default=None, metavar="N",
                     help="TensorFlow intra-op threads (default: TensorFlow's choice)")


def pytest_configure(config):
    n = config.getoption("intra_op_threads")
    if n:
        tf.config.threading.set_intra_op_parallelism_threads(n)  # before the first op runs
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)


@pytest.fixture(scope="session")
def mirrored_cpu_strategy() -> tf.distribute.MirroredStrategy:
    """The one MirroredStrategy over the two logical CPU devices of this test process.

    Every MirroredStrategy object starts its collective group/instance keys at the same values,
    and the collective executor caches instances by key: collectives of a second strategy in the
    same process then collide with the first one's ("Shape mismatch in the collective instance
    100"). Tests that run collectives in-process share this object.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    assert len(devices) == 2, "expected two logical CPU devices"
    return tf.distribute.MirroredStrategy(devices)
