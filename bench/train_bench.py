"""Training throughput: the project's training loop against a plain `keras.Model.fit`.

    python -m bench.train_bench [--users N --items N --interactions N] [--data DIR]
                                [--batch-size 4096] [--baseline-steps 200] [--out docs/PERFORMANCE.md]

Both train the same towers and heads (the default preset) on the realistic simulator's
data. The project's loop encodes ids once, gathers features per batch from the entity
tables, reads and updates only the embedding rows a batch touches (model/training/towers.py
Embedding, model/training/optim.py); the baseline
feeds raw columns through an in-memory `tf.data` pipeline into a model with the string
lookups inside and Keras' Adam, whose updates are dense over whole embedding tables. The
baseline runs a fixed number of steps (a whole epoch of it at 1M ids takes too long to
wait for); both figures are examples per second of training steps, measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.sections import write_section
from recsys.artifacts import host


def log(msg: str) -> None:
    print(f"train-bench: {msg}", file=sys.stderr, flush=True)


def baseline_fit(data: Path, batch_size: int, steps: int) -> float:
    """Examples/s of keras.Model.fit on raw columns (string lookups inside, Keras Adam)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from recsys.artifacts.feature_store import to_columns
    from recsys.model.data.dataset import load_dataset, split_rows
    from recsys.model.training.heads import HeadsLayer
    from recsys.model.training.config import make_config
    from recsys.model.training.inputs import fit_all_preprocessing
    from recsys.model.training.towers import build_encoder, build_tower

    config = make_config("default")
    ds = load_dataset(data)
    train_rows, _ = split_rows(ds.interactions, config.split, config.test_size, config.seed)
    rows = train_rows[: steps * batch_size * 2]
    prep = fit_all_preprocessing(ds, train_rows)
    frame = ds.joined(rows)
    cols = {k: (v.astype(str) if v.dtype == object else v) for k, v in to_columns(frame, ds.spec.features).items()}
    towers = {}
    for side in ("user", "item"):
        feats = ds.spec.tower(side)
        enc = build_encoder(side, feats, prep, hidden=config.hidden, output_activation=config.output_activation,
                            l2_normalize=config.l2_normalize, embedding=keras.layers.Embedding)  # Keras' own
        towers[side] = build_tower(f"{side}_tower", feats, prep, enc)
    inputs = {**towers["user"].input, **towers["item"].input}
    u = towers["user"]({k: inputs[k] for k in towers["user"].input})
    v = towers["item"]({k: inputs[k] for k in towers["item"].input})
    ctr, cvr = HeadsLayer(config.head_inputs, config.head_hidden)(u, v)
    p_click = keras.layers.Activation("sigmoid", name="click")(ctr)
    p_ctcvr = keras.layers.Multiply(name="conversion")([p_click, keras.layers.Activation("sigmoid")(cvr)])
    model = keras.Model(inputs, {"click": p_click, "conversion": p_ctcvr})
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss={"click": "binary_crossentropy", "conversion": "binary_crossentropy"})
    labels = {"click": frame["click"].to_numpy(np.float32), "conversion": frame["conversion"].to_numpy(np.float32)}
    dataset = tf.data.Dataset.from_tensor_slices((cols, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 4:  # after tracing and warm-up
                self.start = time.perf_counter()
            self.last = (batch, time.perf_counter())

    timer = Timer()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    batches = timer.last[0] - 4
    return batches * batch_size / (timer.last[1] - timer.start)


def project_loop(data: Path, batch_size: int) -> tuple[float, float]:
    """(examples/s of one epoch of the project's loop, its seconds)."""
    from recsys.model.training.config import make_config
    from recsys.model.training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        version, _ = train(data, tmp, make_config("default", epochs=1, batch_size=batch_size, validation_fraction=0.0))
        from recsys.artifacts.version import read_manifest

        row = read_manifest(version)["history"][0]
    return row["examples_per_s"], row["seconds"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_bench", description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--interactions", type=int, default=10_000_000)
    p.add_argument("--data", help="an existing data set (skips the simulation)")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--baseline-steps", type=int, default=200)
    p.add_argument("--out", default="docs/PERFORMANCE.md")
    args = p.parse_args(argv)

    from recsys.model.data.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "data"
        if not args.data:
            log(f"simulating {args.users:,} users x {args.items:,} items x {args.interactions:,} exposures")
            simulate("realistic", data, users=args.users, items=args.items, interactions=args.interactions)
        log("project training loop, one epoch")
        ours, seconds = project_loop(data, args.batch_size)
        log(f"project loop: {ours:,.0f} examples/s ({seconds:.0f} s)")
        log(f"plain keras fit, {args.baseline_steps} steps")
        base = baseline_fit(data, args.batch_size, args.baseline_steps)
        log(f"keras fit: {base:,.0f} examples/s")

    command = "python -m bench.train_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    body = "\n".join([
        "## Training throughput", "",
        f"Machine: {host.describe()}. Command: `{command.strip()}`.", "",
        f"Realistic simulator, {args.users:,} users x {args.items:,} items x {args.interactions:,} exposures, "
        f"batch {args.batch_size}, the default preset's towers and heads.", "",
        "| trainer | examples/s | ratio to baseline |", "|---|---|---|",
        f"| plain `keras.Model.fit` on in-memory `tf.data`, Keras Adam ({args.baseline_steps} steps) | {base:,.0f} | 1.00 |",
        f"| project loop: encoded tables, per-batch gathers, row reads and sparse Adam (one epoch, {seconds:.0f} s) | {ours:,.0f} | {ours / base:.2f} |",
        "",
    ])
    write_section(Path(args.out), "train-bench", body)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
