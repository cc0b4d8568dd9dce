"""Training-step throughput of kvae beside a minimal hand-written step.

    python benchmarks/train_throughput.py [--configs celeba,fashion_mnist]
        [--precisions float32,mixed_float16] [--backends tensorflow,jax]
        [--steps 20] [--warmup 3] [--celeba-batch 100]

For each network configuration (the CelebA recipe's ResNet, the
Fashion-MNIST recipe's InfoGAN net) and precision it measures images per
second of:
  - `tf.function` baseline: a minimal hand-written TensorFlow step on the
    same encoder and decoder (sampled z, Gaussian NLL with a learned scalar
    gamma, KL, Adam), XLA off and on;
  - kvae on TensorFlow: `VAE.fit` with the custom train_step (computed gamma,
    all metrics), XLA off and on; timed as the difference between a 2N-step
    and an N-step epoch, which removes fit's fixed cost per call;
  - kvae on JAX: `VAE.fit` with the JAX train_step (always XLA-compiled).
Each backend runs in its own process (Keras fixes the backend per process);
all rows come from one run of this script, on synthetic data held in memory.
The figure of merit is the ratio kvae / baseline with the same XLA setting
(the JAX rows are compared with the XLA baseline). Prints a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "celeba": {
        "shape": (64, 64, 3),
        "net": "resnet",
        "latent_dim": 64,
        "batch_size": 100,
        "net_config": {"base_dim": 32, "num_scale": 4},
    },
    "fashion_mnist": {
        "shape": (28, 28, 1),
        "net": "infogan",
        "latent_dim": 64,
        "batch_size": 64,
        "net_config": {},
    },
}


def images(config, count, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((count, *config["shape"]), dtype=np.float32)


def time_steps(run_one, steps, warmup):
    """Seconds per step of `run_one()` after `warmup` calls (compilation)."""
    for _ in range(warmup):
        run_one()
    started = time.perf_counter()
    for _ in range(steps):
        run_one()
    return (time.perf_counter() - started) / steps


def kvae_step_time(config, precision, jit_compile, steps, warmup):
    import keras

    import kvae

    keras.utils.set_random_seed(0)
    model = kvae.VAE(
        config["shape"],
        config["latent_dim"],
        net=config["net"],
        net_config=config["net_config"],
        gamma="computed",
        precision=precision,
    )
    model.compile(optimizer=kvae.models.adam(1e-4), jit_compile=jit_compile)
    size = config["batch_size"]
    data = images(config, size * max(2 * steps, warmup))

    def fit(count):
        started = time.perf_counter()
        model.fit(data[: size * count], batch_size=size, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - started

    fit(warmup)  # compiles the train function
    # fit() has a fixed cost per call (iterator, callbacks); the difference of
    # a 2N-step and an N-step epoch leaves the N steps of the training loop.
    return (fit(2 * steps) - fit(steps)) / steps


def baseline_step_time(config, precision, jit_compile, steps, warmup):
    """The minimal hand-written tf.function step on the same networks."""
    import keras
    import tensorflow as tf

    from kvae import networks

    keras.utils.set_random_seed(0)
    policy = keras.dtype_policies.DTypePolicy(precision)
    encoder, decoder = networks.build(
        config["net"],
        config["shape"],
        config["latent_dim"],
        dtype=policy,
        net_config=config["net_config"],
    )
    log_gamma = tf.Variable(0.0)
    variables = encoder.trainable_variables + decoder.trainable_variables + [log_gamma]
    optimizer = keras.optimizers.Adam(
        1e-4, epsilon=1e-8
    )  # written out: the baseline is independent
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)
    pixels = float(tf.reduce_prod(config["shape"]))

    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            mu, log_sigma = encoder(x, training=True)
            z = mu + tf.exp(log_sigma) * tf.random.normal(tf.shape(mu))
            x_mean = tf.cast(decoder(z, training=True), tf.float32)
            squared = tf.reduce_sum(tf.square(x - x_mean), axis=[1, 2, 3])
            recon = squared / (2.0 * tf.exp(2.0 * log_gamma)) + pixels * log_gamma
            kl = 0.5 * tf.reduce_sum(
                tf.square(mu) + tf.exp(2.0 * log_sigma) - 2.0 * log_sigma - 1.0, axis=1
            )
            loss = tf.reduce_mean(recon + kl)
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    batch = tf.constant(images(config, config["batch_size"]))

    def run_one():
        step(batch).numpy()

    return time_steps(run_one, steps, warmup)


def worker(args):
    """Measure this process's backend; print one JSON object per row."""
    import keras

    from kvae import cli

    backend = keras.backend.backend()
    device = cli.device_name()
    for name in args.configs:
        config = dict(CONFIGS[name])
        if name == "celeba":
            config["batch_size"] = args.celeba_batch
        for precision in args.precisions:
            settings = [True] if backend == "jax" else [False, True]
            for jit_compile in settings:
                rows = [("kvae", kvae_step_time)]
                if backend == "tensorflow":
                    rows.insert(0, ("tf.function baseline", baseline_step_time))
                for label, measure in rows:
                    seconds = measure(config, precision, jit_compile, args.steps, args.warmup)
                    print(
                        json.dumps(
                            {
                                "config": name,
                                "batch": config["batch_size"],
                                "precision": precision,
                                "backend": backend,
                                "xla": jit_compile,
                                "step": label,
                                "images_per_s": config["batch_size"] / seconds,
                                "device": device,
                            }
                        ),
                        flush=True,
                    )


def table(rows):
    baseline = {
        (r["config"], r["precision"], r["xla"]): r["images_per_s"]
        for r in rows
        if r["step"] == "tf.function baseline"
    }
    lines = [
        "| config | batch | precision | backend | XLA | step | images/s | kvae / baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reference = baseline.get((r["config"], r["precision"], r["xla"]))
        ratio = (
            ""
            if r["step"] != "kvae"
            else (f"{r['images_per_s'] / reference:.2f}" if reference else "n/a (no TF baseline)")
        )
        lines.append(
            f"| {r['config']} | {r['batch']} | {r['precision']} | {r['backend']} | "
            f"{'on' if r['xla'] else 'off'} | {r['step']} | {r['images_per_s']:.1f} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default="celeba,fashion_mnist")
    parser.add_argument("--precisions", default="float32,mixed_float16")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--celeba-batch", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.configs = args.configs.split(",")
    args.precisions = args.precisions.split(",")
    for name in args.configs:
        if name not in CONFIGS:
            parser.error(f"unknown config {name!r}; expected {', '.join(CONFIGS)}")
    if args.worker:
        worker(args)
        return
    rows = []
    forwarded = [arg for arg in sys.argv[1:] if arg != "--worker"]
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, __file__, "--worker", *forwarded],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            print(f"{backend}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows += [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    devices = sorted({f"{row['backend']}: {row['device']}" for row in rows})
    print(f"devices: {'; '.join(devices)}; steps timed: {args.steps} after {args.warmup} warm-up")
    print(table(rows))


if __name__ == "__main__":
    main()
