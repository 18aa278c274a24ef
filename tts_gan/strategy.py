"""Distribution strategy factory for `tts-gan-train` (App. D: data parallelism over replicas).

The paper trained on Cloud TPU v3 pods with 128 data-parallel replicas and cross-replica
BatchNorm (App. D). ``make_strategy`` builds the equivalent ``tf.distribute`` strategy:

=================  ===========================================================================
``default``        no distribution (``tf.distribute.get_strategy()``), one replica
``one_device``     ``OneDeviceStrategy`` on the first GPU, else the CPU
``mirrored``       ``MirroredStrategy`` over all local GPUs, else over the logical CPU devices
``multi_worker``   ``MultiWorkerMirroredStrategy``, cluster from the ``TF_CONFIG`` environment
``tpu``            ``TPUClusterResolver(tpu=...)`` + ``connect_to_cluster`` +
                   ``initialize_tpu_system`` + ``TPUStrategy``
=================  ===========================================================================

Failures to set up a strategy raise :class:`StrategyError` with a one-line message (the CLI
prints it and exits with status 2 instead of a stack trace).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


class StrategyError(RuntimeError):
    """A strategy could not be created; the message is a single line meant for the user."""


def configure_cpu_replicas(num: int) -> None:
    """Splits the physical CPU into ``num`` logical devices (for ``mirrored`` tests on CPU).

    Must run before TensorFlow initialises its devices (before any op runs).
    """
    if num <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num)
    except RuntimeError as e:  # devices already initialised
        if len(tf.config.list_logical_devices("CPU")) != num:
            raise StrategyError(f"cannot create {num} logical CPU devices: {e}") from None


def _one_line(e: BaseException, limit: int = 160) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[:limit].rstrip() + "..."
    return f"{type(e).__name__}: {text}"


def _tpu_strategy(tpu: str) -> tf.distribute.Strategy:
    """TPUStrategy as on a Cloud TPU (VM or pod): resolver → connect → initialise."""
    name = tpu or os.environ.get("TPU_NAME", "")
    if not name:
        raise StrategyError(
            "--strategy=tpu needs --tpu=NAME (a Cloud TPU name or grpc:// address, or 'local' on "
            "a TPU VM) or the TPU_NAME environment variable")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        if name != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as e:  # noqa: BLE001 - any failure here means "no usable TPU"
        raise StrategyError(
            f"--strategy=tpu: no usable TPU {name!r} ({_one_line(e)})") from None


def _multi_worker_strategy() -> tf.distribute.Strategy:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        raise StrategyError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                            "(cluster spec + this task's type and index)")
    try:
        tf_config = json.loads(raw)
        workers = tf_config["cluster"]["worker"]
        tf_config["task"]["type"], int(tf_config["task"]["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise StrategyError(f"TF_CONFIG is invalid ({_one_line(e)}): {raw[:200]}") from None
    if not workers:
        raise StrategyError("TF_CONFIG lists no workers")
    return tf.distribute.MultiWorkerMirroredStrategy()


def make_strategy(name: str, *, tpu: str = "", devices: list[str] | None = None
                  ) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (one of :data:`STRATEGIES`).

    ``devices`` (mirrored only) overrides the device list, e.g. ``["/cpu:0", "/cpu:1"]``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return _multi_worker_strategy()
    if name == "tpu":
        return _tpu_strategy(tpu)
    raise StrategyError(f"unknown --strategy={name!r}; expected one of {', '.join(STRATEGIES)}")


def task_info(strategy: tf.distribute.Strategy) -> tuple[str | None, int, bool]:
    """(task type, task id, is_chief) of this process; chief = the only process that writes
    summaries, config files and the real checkpoints (worker 0 when there is no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None, 0, True
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    spec = resolver.cluster_spec().as_dict()
    if task_type is None:
        return None, 0, True
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in spec)
    return task_type, task_id, is_chief
