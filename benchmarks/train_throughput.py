"""Training-step throughput of kvae beside a hand-written step on the same
networks, on the backend it runs on.

    python benchmarks/train_throughput.py [--configs celeba,fashion_mnist]
        [--batches 64,100] [--precisions float32,mixed_bfloat16]
        [--backends tensorflow,jax] [--steps 32] [--rounds 5] [--warmup 3]
        [--steps-per-execution 16] [--peak-tflops 989]

For each network configuration (the CelebA recipe's ResNet, the
Fashion-MNIST recipe's InfoGAN-like net), batch size and precision it
measures images per second of:
  - the hand-written baseline of the backend: on TensorFlow a `tf.function`
    step (XLA off and on), on JAX a `jax.jit` step built from the networks'
    `stateless_call` with Adam written out in jax.numpy. Both sample z, take
    the Gaussian NLL with a learned scalar gamma and the KL, and apply Adam;
  - kvae: `VAE.fit` with its custom train_step (computed gamma, all
    metrics); XLA off and on on TensorFlow, always on on JAX. Its batches
    come from kvae's own tf.data training pipeline, as `kvae.train` feeds
    them (`--input pipeline`, the default where TensorFlow is installed),
    or from NumPy arrays (`--input arrays`, the default without it).
A round times N steps: the baseline runs N steps on one constant batch then
waits for the device; kvae's round is the difference between a 2N-step and
an N-step `fit`, which removes fit's fixed cost per call. The baseline's
and kvae's rounds alternate. The table gives the median of --rounds rounds
and their spread (min-max): a single round can hiccup.

FLOP: the analytic count of the networks' convolutions and dense layers
(2 x multiply-adds per image, encoder and decoder forward), times 3 for a
training step (forward, and a backward pass of about twice the forward).
With --peak-tflops (the device's peak for the precision used, from its data
sheet) the table adds MFU = achieved FLOP/s / peak.

Each backend runs in its own process (Keras fixes the backend per process);
`--backends jax` needs no TensorFlow (for machines that have JAX only). All
rows come from one run, on synthetic data held in memory. The figure of
merit is kvae / baseline on the same backend and XLA setting.
"""

import argparse
import importlib.util
import json
import math
import os
import statistics
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
"""The recipes' stage-1 networks; batch_size is the recipe's (the default
of --batches)."""


def images(shape, count, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((count, *shape), dtype=np.float32)


# -- analytic FLOP count ------------------------------------------------------------


def _layers(model):
    """Every layer of a functional model, nested models opened."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _kernel(layer):
    for weight in layer.weights:
        if weight.path.split("/")[-1] == "kernel":
            return tuple(weight.shape)
    return None


def forward_flops(model):
    """2 x the multiply-adds of one example's forward pass through the
    convolutions (Conv2D: output pixels x kh x kw x c_in x c_out;
    Conv2DTranspose: input pixels x kh x kw x c_in x c_out) and dense
    layers (inputs x outputs per position); batch norm, activations and
    the rest are not counted."""
    total = 0
    for layer in _layers(model):
        kernel = _kernel(layer)
        if kernel is None:
            continue
        name = type(layer).__name__
        if len(kernel) == 4 and "Transpose" in name:  # (kh, kw, c_out, c_in)
            height, width = layer.input.shape[1:3]
            total += height * width * math.prod(kernel)
        elif len(kernel) == 4:  # (kh, kw, c_in, c_out)
            height, width = layer.output.shape[1:3]
            total += height * width * math.prod(kernel)
        elif len(kernel) == 2:  # (inputs, outputs)
            positions = math.prod(layer.input.shape[1:-1])
            total += positions * math.prod(kernel)
    return 2 * total


def step_flops_per_image(config):
    from kvae import networks

    encoder, decoder = networks.build(
        config["net"], config["shape"], config["latent_dim"], net_config=config["net_config"]
    )
    return 3 * (forward_flops(encoder) + forward_flops(decoder))


# -- timing ---------------------------------------------------------------------------


def kvae_round(config, batch, precision, jit_compile, args):
    """A timed round of kvae's `fit`: seconds per step, as the difference of
    a 2N-step and an N-step epoch (which removes fit's fixed cost per call).
    Batches come from kvae's own training pipeline (`kvae.data.pipeline`,
    tf.data, uint8 images in memory) where TensorFlow is installed, as
    `kvae.train` feeds them; from NumPy arrays otherwise (JAX alone)."""
    import keras
    import numpy as np

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
    model.compile(
        optimizer=kvae.models.adam(1e-4),
        jit_compile=jit_compile,
        steps_per_execution=args.steps_per_execution,
    )
    pixels = (255 * images(config["shape"], batch * max(2 * args.steps, args.warmup))).astype(
        np.uint8
    )
    if args.input == "pipeline":
        from kvae.data.pipeline import Dataset

        dataset = Dataset("synthetic", pixels, pixels[:batch])

        def fit(count, callbacks):
            batches = dataset.train_batches(batch, seed=0, steps=count)
            model.fit(batches, epochs=1, verbose=0, callbacks=callbacks)

    else:
        data = pixels.astype(np.float32) / 255.0

        def fit(count, callbacks):
            model.fit(
                data[: batch * count],
                batch_size=batch,
                epochs=1,
                verbose=0,
                shuffle=False,
                callbacks=callbacks,
            )

    fit(args.warmup, [])  # compiles the train function
    return lambda: seconds_per_step(model, fit, args.steps)


def seconds_per_step(model, fit, steps):
    """Seconds per training step of `fit(count, callbacks)` (a `model.fit`
    of `count` steps): the difference of a 2N-step and an N-step call over
    N, which removes what a call pays once (its first step, an iterator's
    start). Each call is timed from fit's `on_train_begin` to its
    `on_train_end`, the last step finished (the step counter read back),
    which leaves out fit's set-up and tear-down; the tear-down of a tf.data
    iterator can wait about a second for tf.data's autotuning thread."""
    import keras

    def loop_seconds(count):
        marks = {}

        class Clock(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                marks["begin"] = time.perf_counter()

            def on_train_end(self, logs=None):
                keras.ops.convert_to_numpy(model.optimizer.iterations)
                marks["end"] = time.perf_counter()

        fit(count, [Clock()])
        return marks["end"] - marks["begin"]

    return (loop_seconds(2 * steps) - loop_seconds(steps)) / steps


def _build_networks(config, precision):
    import keras

    from kvae import networks

    keras.utils.set_random_seed(0)
    return networks.build(
        config["net"],
        config["shape"],
        config["latent_dim"],
        dtype=keras.dtype_policies.DTypePolicy(precision),
        net_config=config["net_config"],
    )


def tf_baseline_round(config, batch, precision, jit_compile, args):
    """A timed round (seconds per step) of the minimal hand-written
    tf.function step on the same networks, on one constant batch."""
    import keras
    import tensorflow as tf

    encoder, decoder = _build_networks(config, precision)
    log_gamma = tf.Variable(0.0)
    variables = encoder.trainable_variables + decoder.trainable_variables + [log_gamma]
    optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-8)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)
    pixels = float(math.prod(config["shape"]))

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

    x = tf.constant(images(config["shape"], batch))

    def run_round(steps):
        started = time.perf_counter()
        for _ in range(steps):
            loss = step(x)
        loss.numpy()
        return time.perf_counter() - started

    run_round(args.warmup)
    return lambda: run_round(args.steps) / args.steps


def jax_baseline_round(config, batch, precision, jit_compile, args):
    """A hand-written jitted JAX step on the same networks: stateless_call,
    the same loss as the TF baseline, Adam (Kingma & Ba, Alg. 1; epsilon
    1e-8 as TF1) in jax.numpy, buffers donated."""
    import jax
    import jax.numpy as jnp

    encoder, decoder = _build_networks(config, precision)
    pixels = float(math.prod(config["shape"]))
    split = len(encoder.trainable_variables)
    params = [v.value for v in encoder.trainable_variables + decoder.trainable_variables]
    params.append(jnp.zeros((), jnp.float32))  # log gamma
    state = (
        [v.value for v in encoder.non_trainable_variables],
        [v.value for v in decoder.non_trainable_variables],
    )

    def loss_fn(params, state, x, key):
        (mu, log_sigma), encoder_state = encoder.stateless_call(
            params[:split], state[0], x, training=True
        )
        mu, log_sigma = mu.astype(jnp.float32), log_sigma.astype(jnp.float32)
        z = mu + jnp.exp(log_sigma) * jax.random.normal(key, mu.shape)
        x_mean, decoder_state = decoder.stateless_call(params[split:-1], state[1], z, training=True)
        log_gamma = params[-1]
        squared = jnp.sum(jnp.square(x - x_mean.astype(jnp.float32)), axis=(1, 2, 3))
        recon = squared / (2.0 * jnp.exp(2.0 * log_gamma)) + pixels * log_gamma
        kl = 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(2 * log_sigma) - 2 * log_sigma - 1, axis=1)
        return jnp.mean(recon + kl), (encoder_state, decoder_state)

    def step(params, moments, state, count, x, key):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, key)
        count = count + 1
        first, second = moments
        first = [0.9 * m + 0.1 * g for m, g in zip(first, grads)]
        second = [0.999 * v + 0.001 * jnp.square(g) for v, g in zip(second, grads)]
        rate = 1e-4 * jnp.sqrt(1 - 0.999**count) / (1 - 0.9**count)
        params = [p - rate * m / (jnp.sqrt(v) + 1e-8) for p, m, v in zip(params, first, second)]
        return params, (first, second), state, count, loss

    step = jax.jit(step, donate_argnums=(0, 1, 2))
    moments = ([jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params])
    count = jnp.zeros((), jnp.float32)
    x = jnp.asarray(images(config["shape"], batch))
    keys = jax.random.split(jax.random.PRNGKey(0), max(args.steps, args.warmup))
    carry = (params, moments, state, count)

    def run_round(steps):
        nonlocal carry
        started = time.perf_counter()
        for index in range(steps):
            *outputs, loss = step(*carry, x, keys[index])
            carry = tuple(outputs)
        jax.block_until_ready(loss)
        return time.perf_counter() - started

    run_round(args.warmup)
    return lambda: run_round(args.steps) / args.steps


def worker(args):
    """Measure this process's backend; print one JSON object per row."""
    import keras

    from kvae import devices

    backend = keras.backend.backend()
    device = devices.device_name()
    baseline = {"tensorflow": tf_baseline_round, "jax": jax_baseline_round}[backend]
    for name in args.configs:
        config = CONFIGS[name]
        flops = step_flops_per_image(config)
        for batch in args.batches or [config["batch_size"]]:
            for precision in args.precisions:
                for jit_compile in [True] if backend == "jax" else [False, True]:
                    rounds = {
                        "baseline": baseline(config, batch, precision, jit_compile, args),
                        "kvae": kvae_round(config, batch, precision, jit_compile, args),
                    }
                    # Alternate the two steps' rounds, so that a slow spell of
                    # a shared machine falls on both.
                    seconds = {label: [] for label in rounds}
                    for _ in range(args.rounds):
                        for label, run_round in rounds.items():
                            seconds[label].append(run_round())
                    for label in rounds:
                        row = {
                            "config": name,
                            "batch": batch,
                            "precision": precision,
                            "backend": backend,
                            "xla": jit_compile,
                            "step": label,
                            "seconds": seconds[label],
                            "flops_per_image": flops,
                            "device": device,
                            "input": args.input,
                        }
                        print(json.dumps(row), flush=True)


# -- the table ------------------------------------------------------------------------


def summarise(row, peak_tflops=None):
    """Median images/s, its spread over rounds, and the FLOP rate of a row."""
    rates = sorted(row["batch"] / seconds for seconds in row["seconds"])
    median = statistics.median(rates)
    achieved = median * row["flops_per_image"] / 1e12
    return {
        "images_per_s": median,
        "spread": f"{rates[0]:,.0f}-{rates[-1]:,.0f}",
        "ms_per_step": 1e3 * row["batch"] / median,
        "tflops": achieved,
        "mfu": f"{achieved / peak_tflops:.1%}" if peak_tflops else "",
    }


def table(rows, peak_tflops=None):
    summaries = [summarise(row, peak_tflops) for row in rows]
    baseline = {
        (r["config"], r["batch"], r["precision"], r["backend"], r["xla"]): s["images_per_s"]
        for r, s in zip(rows, summaries)
        if r["step"] == "baseline"
    }
    header = [
        "config",
        "batch",
        "precision",
        "backend",
        "XLA",
        "step",
        "images/s (median)",
        "spread",
        "ms/step",
        "GFLOP/image",
        "TFLOP/s",
        "MFU",
        "kvae / baseline",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r, s in zip(rows, summaries):
        key = (r["config"], r["batch"], r["precision"], r["backend"], r["xla"])
        ratio = f"{s['images_per_s'] / baseline[key]:.2f}" if r["step"] == "kvae" else ""
        label = "kvae fit" if r["step"] == "kvae" else f"hand-written {r['backend']} step"
        cells = [
            r["config"],
            r["batch"],
            r["precision"],
            r["backend"],
            "on" if r["xla"] else "off",
            label,
            f"{s['images_per_s']:,.1f}",
            s["spread"],
            f"{s['ms_per_step']:.2f}",
            f"{r['flops_per_image'] / 1e9:.3f}",
            f"{s['tflops']:.3f}",
            s["mfu"],
            ratio,
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default="celeba,fashion_mnist")
    parser.add_argument(
        "--batches", default="", help="comma-separated batch sizes (default: each recipe's)"
    )
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--steps", type=int, default=32, help="steps N of a timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation)")
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=16,
        help="kvae rows' fit (default 16: what kvae.train's auto picks on a GPU)",
    )
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's peak TFLOP/s at this precision (MFU)"
    )
    parser.add_argument(
        "--input",
        choices=["pipeline", "arrays"],
        help="kvae rows' batches: kvae's tf.data training pipeline (the default "
        "where TensorFlow is installed) or NumPy arrays (the default without it)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.input is None:
        args.input = "pipeline" if importlib.util.find_spec("tensorflow") else "arrays"
    args.configs = args.configs.split(",")
    args.precisions = args.precisions.split(",")
    args.batches = [int(b) for b in args.batches.split(",") if b]
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
        rows += [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    devices = sorted({f"{row['backend']}: {row['device']}" for row in rows})
    print(
        f"devices: {'; '.join(devices)}; {args.rounds} rounds of {args.steps} steps after "
        f"{args.warmup} warm-up, alternating; kvae steps per execution "
        f"{args.steps_per_execution}, input {args.input}; "
        f"peak {args.peak_tflops or 'not given'} TFLOP/s"
    )
    print(table(rows, args.peak_tflops))


if __name__ == "__main__":
    main()
