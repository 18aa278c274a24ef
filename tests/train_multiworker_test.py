"""(2) MultiWorkerMirroredStrategy with two local worker processes (TF_CONFIG on 127.0.0.1):
both workers run the App.-D step and end with bit-identical weights and optimizer states."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import train_testdata as td

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_workers_end_with_identical_weights(tmp_path):
    data_dir = td.write_dataset(str(tmp_path / "data"), window_frames=32,
                                shards={"train": 2, "valid": 1})
    model_dir = str(tmp_path / "model")
    ports = ",".join(str(p) for p in _free_ports(2))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    outs = [str(tmp_path / f"worker{i}.json") for i in range(2)]
    procs = [subprocess.Popen(
        [sys.executable, os.path.join(HERE, "multiworker_train_worker.py"), str(i), ports,
         data_dir, model_dir, outs[i]], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=420)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    results = []
    for o in outs:
        with open(o) as f:
            results.append(json.load(f))
    assert [r["step"] for r in results] == [3, 3]
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["digests"] == results[1]["digests"]
    assert results[0]["d_loss"] == results[1]["d_loss"]
    # Only the chief (worker 0) writes the real checkpoints, config and summaries.
    assert sorted(f for f in os.listdir(model_dir) if f.startswith("ckpt-3")) == [
        "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert not [f for f in os.listdir(model_dir) if f.startswith(".worker")]
    assert os.path.exists(os.path.join(model_dir, "config.json"))
