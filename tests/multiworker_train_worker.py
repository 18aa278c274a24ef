"""One worker of the 2-process MultiWorkerMirroredStrategy test (tests/train_multiworker_test.py).

Usage: python multiworker_train_worker.py TASK_INDEX PORT0,PORT1 DATA_DIR MODEL_DIR OUT_JSON

Sets TF_CONFIG, trains the micro config for a few steps with ``--strategy=multi_worker``
semantics, and writes the step and SHA-256 digests of G, G_ema, D and the optimizer states.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    index, ports, data_dir, model_dir, out = sys.argv[1:6]
    workers = [f"127.0.0.1:{p}" for p in ports.split(",")]
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": int(index)}})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train_testdata as td

    from tts_gan import strategy as strategy_lib
    from tts_gan import train_lib

    strategy = strategy_lib.make_strategy("multi_worker")
    config = td.micro_config(data_dir, random_windows=True, max_steps=3, save_every=3,
                             log_every=1, eval_every=0)
    def log(msg: str) -> None:
        print(f"[worker {index}] {msg}", flush=True)

    res = train_lib.train(config, model_dir, strategy, log=log)
    tr = res.trainer
    result = {
        "step": res.end_step, "replicas": strategy.num_replicas_in_sync,
        "d_loss": res.last_metrics["d_loss"],
        "digests": {name: train_lib.weights_digest(variables) for name, variables in (
            ("generator", tr.G.weights), ("ema_generator", tr.G_ema.weights),
            ("discriminator", tr.D.weights), ("g_optimizer", tr.g_opt.variables),
            ("d_optimizer", tr.d_opt.variables))},
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
