"""GAN-TTS trains with TensorFlow's oneDNN ops off as with them on (#26).

TF 2.21's Eigen CPU kernels have no gradient for dilated convolutions, and oneDNN is off by
default on CPUs without AVX512_VNNI/BF16 or AMX (an AVX2 AMD EPYC): there no training step ran.
``tts_gan.layers.dilated_conv1d`` differentiates those convs through their space-to-batch form.
oneDNN on/off must be chosen before TensorFlow starts, so each side runs in a subprocess (this
file's ``__main__``): the oneDNN run first, then the oneDNN-off run from its initial weights.
Both train experiments/micro.py with random windows (test-size: GBlocks with every dilation
1-8, DBlocks with dilation 2, a cRWD and a uRWD on random windows, the training step's every
op; tiny.py's trace cost each process minutes more on 2 cores, BUILD_NOTES "Test suite wall
time").
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np
from float32_bounds import EPS, exceeds, within

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 2
SENSITIVITY_SEEDS = 3
FRAMES = 24  # experiments/micro.py's window (tiny.py's)


def _updates_difference(w0a: dict, wa: dict, w0b: dict, wb: dict) -> float:
    """train_lib_test._updates_difference of two runs that start from their own weights."""
    from train_lib_test import _updates_difference

    return _updates_difference(w0a, wa, {k: wb[k] - w0b[k] + w0a[k] for k in w0a})


def _state(tr) -> tuple[dict, list]:
    """The trainer's weights (G, G_ema, D) and optimizer variables."""
    from train_lib_test import _all_weights

    return _all_weights(tr), [np.array(v.numpy()) for o in (tr.g_opt, tr.d_opt)
                              for v in o.variables]


def _steps(tr, dist, start: tuple[dict, list], steps: list[int]
           ) -> tuple[list[dict], list[tuple[dict, list]]]:
    """Puts ``tr`` at ``start`` (weights, optimizer variables), runs ``steps``; returns the
    metrics and the state after each."""
    from train_lib_test import _set_weights

    _set_weights(tr, start[0])
    for v, x in zip([v for o in (tr.g_opt, tr.d_opt) for v in o.variables], start[1],
                    strict=True):
        v.assign(x)
    metrics, states = [], []
    for s in steps:
        metrics.append(tr.scalar_metrics(tr.train_step(dist, s)))
        states.append(_state(tr))
    return metrics, states


def _weights_difference(a: dict, b: dict, keys) -> float:
    """max over the variables ``keys`` of ‖a − b‖ / ‖a‖; a bias is measured against its
    layer's kernel too (as in _updates_difference: a conv bias right before a BatchNorm has
    true gradient 0 and holds only rounding noise of that layer's gradient sums)."""
    worst = 0.0
    for k in keys:
        scale = np.linalg.norm(a[k])
        kernel = k.rsplit("/", 1)[0] + "/kernel"
        if k.endswith("/bias") and kernel in a:
            scale = max(scale, np.linalg.norm(a[kernel]))
        if scale > 0:
            worst = max(worst, float(np.linalg.norm(a[k] - b[k]) / scale))
    return worst


def _perturbed(w0: dict, keys, size: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: (v * (1.0 + size * rng.choice([-1.0, 1.0], v.shape))).astype(v.dtype)
            if k in keys else v for k, v in w0.items()}


def _child(out: str, ref: str | None) -> None:
    """One side of the comparison (runs in a subprocess; see the module docstring)."""
    sys.path.insert(0, HERE)
    import keras
    import tensorflow as tf
    import train_testdata as td
    from train_lib_test import _distribute, _metrics_difference, _step_rounding

    from tts_gan import layers, train_lib

    data_dir = td.write_dataset(tempfile.mkdtemp(prefix="onednn-"), window_frames=32)
    config = train_lib.resolve_config(td.micro_config(
        data_dir, random_windows=True, adam_epsilon=1.0, g_learning_rate=1.0,
        d_learning_rate=1.0), data_dir)
    batch = td.fixed_batch(int(config.train.global_batch_size), FRAMES)
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(1234)
    tr = train_lib.GANTrainer(config, strategy, config.generator.feature_dim,
                              config.generator.num_speakers)
    dist = _distribute(strategy, batch)
    res = {"onednn": layers.onednn_enabled(), "gradient": layers.dilated_conv_gradient(),
           "rho": _step_rounding(tr, batch)}
    if ref is None:
        start = _state(tr)
        res["metrics"], states = _steps(tr, dist, start, list(range(STEPS)))
        res["states"] = [start, *states]  # before step 1, after step 1, ...
        # control: the windows and z of other steps (what a disagreeing RNG gives), each
        # step from the same state as the real one
        res["control"] = [_steps(tr, dist, res["states"][s], [s + STEPS])
                          for s in range(STEPS)]
    else:
        with open(ref, "rb") as f:
            on = pickle.load(f)
        start = on["states"][0]
        res["metrics"], states = _steps(tr, dist, start, list(range(STEPS)))
        # the rounding observed in step 1, ≥ eps, ≤ ρ: on its forward values (losses,
        # scores) and on the weights it leaves (its gradients' sums), both relative
        m_on, m_off = on["metrics"][0], res["metrics"][0]
        forward = [k for k in m_on if not k.endswith(("grad_norm", "ortho_penalty"))]
        trainable = {f"{k}/{v.path}" for k, m in (("G", tr.G), ("D", tr.D))
                     for v in m.trainable_weights}
        res["r_forward"] = max(_metrics_difference([{k: m_on[k]}], [{k: m_off[k]}])
                               for k in forward)
        res["r_weights"] = _weights_difference(on["states"][1][0], states[0][0], trainable)
        r = min(max(res["r_forward"], res["r_weights"], EPS), res["rho"])
        res["r"] = r
        res["sensitivity"] = [
            _steps(tr, dist, (_perturbed(start[0], trainable, r, seed), start[1]),
                   list(range(STEPS)))[0] for seed in range(SENSITIVITY_SEEDS)]
        # each step again from the oneDNN run's state before it, and from that state with the
        # weights perturbed by r: (start weights, weights after) per seed
        res["same_start"], res["same_start_sensitivity"] = [], []
        for s in range(STEPS):
            st = on["states"][s]
            res["same_start"].append(_steps(tr, dist, st, [s])[1][0][0])
            perturbed = [_perturbed(st[0], trainable, r, seed)
                         for seed in range(SENSITIVITY_SEEDS)]
            res["same_start_sensitivity"].append(
                [(wp, _steps(tr, dist, (wp, st[1]), [s])[1][0][0]) for wp in perturbed])
    with open(out, "wb") as f:
        pickle.dump(res, f)


def _run_child(onednn: str, out: str, ref: str | None = None) -> dict:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TTS_GAN_DILATED_CONV_GRADIENT", None)  # auto: what a user gets
    cmd = [sys.executable, os.path.abspath(__file__), "--out", out]
    if ref:
        cmd += ["--ref", ref]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-4000:]
    with open(out, "rb") as f:
        return pickle.load(f)


def test_micro_trains_two_steps_with_onednn_off_as_with_it_on(tmp_path):
    """Two steps of experiments/micro.py, random windows (learning rates 1 and adam_epsilon 1,
    as in the other step comparisons, so that updates are far above the weights' ulp and linear
    in the gradient) with oneDNN off (space-to-batch gradients of the dilated convs) equal the
    oneDNN run (TF's dilated conv gradients):

    * each step's update, from the same state (the oneDNN run's weights and optimizer state
      before it), within ρ (train_lib_test._step_rounding, as the XLA and mirrored tests) plus
      its measured response, in the oneDNN-off process, to perturbing that state's weights by
      the rounding r observed in step 1 (as train_aux_test._sensitivity_bounds): after step 1
      at learning rate 1 the gradients pass the hinge's and ReLUs' kinks (measured on tiny.py:
      step 1 2e-6 of the update, step 2 5e-4 in G's CBN gain/shift kernels);
    * the metrics of the two free-running runs, step by step and metric by metric, within ρ
      plus their response to perturbing the initial weights by r: step 2 starts from weights
      that already differ by step 1's rounding.

    Control: the windows and z of other steps (a disagreeing RNG), from the same states."""
    from train_lib_test import _metrics_difference

    on = _run_child("1", str(tmp_path / "on.pkl"))
    off = _run_child("0", str(tmp_path / "off.pkl"), str(tmp_path / "on.pkl"))
    assert on["onednn"] and on["gradient"] == "native"
    assert not off["onednn"] and off["gradient"] == "space_to_batch"
    rho = off["rho"]
    for s in range(STEPS):
        w_start, w_on, w_off = on["states"][s][0], on["states"][s + 1][0], off["same_start"][s]
        bound = rho + max(_updates_difference(wp, w, w_start, w_off)
                          for wp, w in off["same_start_sensitivity"][s])
        within(f"step {s + 1} updates from the same state",
               _updates_difference(w_start, w_on, w_start, w_off), bound)
        m_ctl, ctl_states = on["control"][s]
        exceeds(f"step {s + 1} updates, windows and z of step {s + 1 + STEPS}",
                _updates_difference(w_start, w_on, w_start, ctl_states[0][0]), bound)

        m_on, m_off = on["metrics"][s], off["metrics"][s]
        assert m_on.keys() == m_off.keys() and all(np.isfinite(list(m_off.values())))
        bounds = {k: rho + max(_metrics_difference([{k: m_off[k]}], [{k: m[s][k]}])
                               for m in off["sensitivity"]) for k in m_on}

        def worst(m, bounds=bounds, m_on=m_on):
            """max over metrics of difference / its bound."""
            return max(_metrics_difference([{k: m_on[k]}], [{k: m[k]}]) / b
                       for k, b in bounds.items())

        within(f"step {s + 1} metrics (worst metric / its bound)", worst(m_off), 1.0)
        exceeds(f"step {s + 1} metrics, windows and z of step {s + 1 + STEPS}",
                worst(m_ctl[0]), 1.0)
    print(f"observed rounding: forward {off['r_forward']:.3g}, weights after step 1 "
          f"{off['r_weights']:.3g}; perturbation r = {off['r']:.3g}; rho = {rho:.3g}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="one side of the oneDNN on/off comparison")
    p.add_argument("--out", required=True)
    p.add_argument("--ref", default=None)
    a = p.parse_args()
    _child(a.out, a.ref)
