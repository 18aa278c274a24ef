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


# --- scheduling under pytest-xdist (`make test`: -n 2 --dist loadgroup) ------------------------
# Tracing a trainer or an export costs tens of seconds to minutes on 2 cores (BUILD_NOTES, "Test
# suite wall time"), so the work a module-scoped fixture shares must be done once, by one
# worker: the tests that use such a fixture run on one worker (a group); every other test is
# scheduled on its own. Groups and tests are queued costliest first (list scheduling), so that
# the two workers end together instead of one waiting on a late long test.
#
# pytest-xdist 3.8's own loadgroup does not group under pytest 9 (it renames item._nodeid, which
# pytest 9's nodeid no longer reads: every test ran alone, each worker building the fixtures),
# and its controller never sees the items, so the groups are named here by node id:
# module path -> None (the whole module) or the tests that share the fixture.
FIXTURE_GROUPS: dict[str, tuple[str, ...] | None] = {
    "tests/data_test.py": None,                       # prepared, prepared_utts (tts-gan-prep)
    "tests/evaluation_test.py": None,                 # setup (an export)
    "tests/export_test.py": None,                     # exported (tts-gan-export subprocess)
    "tests/extractors_test.py": None,                 # dnsmos (ONNX model)
    "tests/generator_test.py": None,                  # paper_generator, tiny_generator
    "tests/intelligibility_test.py": None,            # recognizer (pocketsphinx)
    "tests/pretrained_test.py": None,                 # synth (the shipped model)
    "tests/quantize_test.py": None,                   # quantized (export + 4 TFLite conversions)
    "tests/streaming_state_test.py": None,            # shipped
    "tests/synthesis_test.py": None,                  # synth (an export)
    "tests/data_prep/frontend_serving_test.py": None,  # prepared (Festival + prep)
    "tests/data_prep/speaker_prosody_test.py": None,  # low_voice (Festival + WORLD + prep)
    "tests/train_aux_test.py": (                      # warm_up_run, aux_step (traced trainers)
        "test_generator_only_warm_up_leaves_d_alone", "test_aux_step_xla_matches_non_xla",
        "test_aux_losses_change_the_generator_update", "test_aux_step_mirrored_matches_default",
        "test_train_logs_every_aux_term_to_tensorboard"),
    "tests/train_loop_test.py": (                     # per_rwd_run (a traced trainer)
        "test_train_seed_fixes_the_initial_weights",
        "test_d_hinge_ensemble_trains_on_the_hinge_of_the_sum"),
    "tests/train_weights_test.py": None,              # run_a (a 2-step training run)
}
# Module-scoped fixtures too cheap to group by: the training tests' synthetic data dirs (a few
# TFRecords, well under a second); grouping by them would pin whole training modules, the
# longest tests of the suite, to one worker.
CHEAP_MODULE_FIXTURES = frozenset({"data_dir"})
HEAVY_FIRST = (  # node-id prefixes, costliest first (measured; BUILD_NOTES)
    "tests/train_lib_test.py::test_micro_run_kill9_then_resume",
    "tests/onednn_off_train_test.py",
    "tests/train_switch_test.py",
    "tests/train_aux_test.py",
    "tests/train_multiworker_test.py",
    "tests/ram_filesystem_test.py::test_prep_train_resume_export_synthesize_eval_on_ram",
    "tests/export_test.py",
    "tests/synthesis_test.py",
    "tests/train_lib_test.py",
    "tests/data_prep/merlin_oracle_test.py",
    "tests/deepspeech2_test.py",
    "tests/discriminator_test.py",
)


def fixture_group(nodeid: str) -> str:
    """The scheduling unit of a test: its FIXTURE_GROUPS group, else the test itself."""
    module, _, name = nodeid.partition("::")
    if module in FIXTURE_GROUPS:
        tests = FIXTURE_GROUPS[module]
        if tests is None or name.split("[", 1)[0] in tests:
            return module
    return nodeid


def _costly_module_fixtures(item: pytest.Item) -> list[str]:
    info = getattr(item, "_fixtureinfo", None)
    return [name for name, defs in (info.name2fixturedefs.items() if info else ())
            if defs and defs[-1].scope == "module" and name not in CHEAP_MODULE_FIXTURES]


def _rank(nodeid: str) -> int:
    return next((i for i, p in enumerate(HEAVY_FIRST) if nodeid.startswith(p)),
                len(HEAVY_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: file order within a rank
    for item in items:  # a new shared fixture without a group: built once per worker (slower)
        if _costly_module_fixtures(item) and fixture_group(item.nodeid) == item.nodeid:
            item.warn(pytest.PytestWarning(
                f"uses the module-scoped fixture(s) {_costly_module_fixtures(item)}: add it to "
                "FIXTURE_GROUPS in tests/conftest.py (or CHEAP_MODULE_FIXTURES)"))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; absent under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: xdist's LoadScopeScheduling over :func:`fixture_group` units, in
    collection order (HEAVY_FIRST first)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FixtureGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return fixture_group(nodeid)

    config.option.loadscopereorder = False  # keep the costliest-first order
    return FixtureGroupScheduling(config, log)
