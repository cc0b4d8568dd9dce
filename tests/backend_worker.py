"""Runs one kvae job in a fresh process on the backend named by
KERAS_BACKEND, for tests that need a new process or the JAX backend.
Prints one JSON object as its last line.

Commands:
  outputs MODEL INPUTS OUT: load MODEL with kvae.load (or plain Keras after
      `import kvae.models` when OUT ends in .plain.npz), save encode / decode /
      reconstruct outputs on the arrays of INPUTS (x, z) and the training
      state to OUT.
  gradients MODEL INPUTS OUT [OFFSETS]: loss terms and gradients of one
      training-mode pass on (x, noise) from INPUTS, saved to OUT; with
      OFFSETS (an npz of tests/helpers.kink_offsets), the kink layers add them.
  replay OUT_DIR GAMMA: train a tiny ResNet VAE with train_on_batch on fixed
      batches, save the step MSEs, the gamma state and the model.
  resume MODEL: load with the optimizer and train one more step.
  batch JOBS: run the jobs of a JSON file [[command, *arguments], ...] in
      this one process and return {"results": [...]}.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _state(model):
    observation = model.observation
    state = {"iterations": int(np.asarray(model.optimizer.iterations))}
    if hasattr(observation, "gamma_square"):
        state["gamma_square"] = float(np.asarray(observation.gamma_square))
    return state


def outputs(model_path, inputs_path, out_path):
    import keras

    import kvae
    import kvae.models  # registers kvae's classes for plain keras.saving.load_model
    from helpers import model_outputs

    plain = out_path.endswith(".plain.npz")
    model = (
        keras.saving.load_model(model_path, compile=False)
        if plain
        else kvae.load(model_path, compile=False)
    )
    np.savez(out_path, **model_outputs(model, np.load(inputs_path)))
    return {"class": type(model).__name__, "gamma": model.gamma()}


def gradients(model_path, inputs_path, out_path, offsets_path=None):
    import keras

    import kvae
    from helpers import apply_kink_offsets

    model = kvae.load(model_path, compile=False)
    inputs = np.load(inputs_path)
    offsets = dict(np.load(offsets_path)) if offsets_path else {}
    with apply_kink_offsets(model, offsets):
        terms, grads = model.loss_and_gradients(inputs["x"], noise=inputs["noise"])
    arrays = {f"grad_{i}": keras.ops.convert_to_numpy(g) for i, g in enumerate(grads)}
    arrays.update({k: keras.ops.convert_to_numpy(v) for k, v in terms.items()})
    np.savez(out_path, **arrays)
    return {"paths": [v.path for v in model.trainable_variables]}


def replay(out_dir, gamma):
    import kvae
    from helpers import random_images, tiny_resnet

    model = tiny_resnet(gamma, seed=3)
    model.compile(optimizer=kvae.models.adam(1e-3))
    batches = [random_images(8, seed=s) for s in range(4)]
    mses, gamma_squares, logs = [], [], []
    for step in range(12):
        log = model.train_on_batch(batches[step % 4], return_dict=True)
        mses.append(float(log["mse"]))
        logs.append({k: float(v) for k, v in log.items()})
        if gamma == "computed":
            gamma_squares.append(float(np.asarray(model.observation.gamma_square)))
    out_dir = Path(out_dir)
    model.save(out_dir / "model.keras")
    return {
        "mses": mses,
        "gamma_squares": gamma_squares,
        "logs": logs,
        "gamma": model.gamma(),
        **_state(model),
    }


def resume(model_path):
    import kvae
    from helpers import random_images

    model = kvae.load(model_path, compile=True)
    before = _state(model)
    weights = [np.array(w) for w in model.trainable_weights]
    scale = float(np.asarray(getattr(model.optimizer, "dynamic_scale", np.nan)))
    log = model.train_on_batch(random_images(8, seed=9), return_dict=True)
    moved = max(
        float(np.abs(np.asarray(w) - old).max()) for w, old in zip(model.trainable_weights, weights)
    )
    return {
        "before": before,
        "after": _state(model),
        "optimizer": type(model.optimizer).__name__,
        "loss": float(log["loss"]),
        "mse": float(log["mse"]),
        "weights_moved": moved,
        "scale_before": scale,
        "scale_after": float(np.asarray(getattr(model.optimizer, "dynamic_scale", np.nan))),
    }


def parallel(folder, cases):
    """Train each case (a comma-separated list of tests/helpers.PARALLEL_CASES
    names) for a few steps from the same saved weights, batches and noise,
    on one device and on two data-parallel devices (simulated CPUs); save
    per-step losses, the gamma state and the weights of both to FOLDER."""
    import keras

    import kvae
    from helpers import PARALLEL_CASES, PARALLEL_STEPS
    from kvae import distribute

    folder = Path(folder)
    report = {}
    for name in cases.split(","):
        keras.utils.set_random_seed(7)
        build, batch = PARALLEL_CASES[name]
        reference = build()
        reference.save(folder / f"{name}-start.keras")
        rng = np.random.default_rng(3)
        x = rng.random((batch * PARALLEL_STEPS, *reference.data_shape)).astype("float32")
        noise = rng.normal(size=(batch * PARALLEL_STEPS, reference.latent_dim)).astype("float32")
        results = {}
        for devices in (1, 2):
            names = distribute.local_devices(devices)
            scope = distribute.data_parallel(names) if devices > 1 else None
            if scope is not None:
                scope.__enter__()
            try:
                model = kvae.load(folder / f"{name}-start.keras", compile=False)
                # JAX compiles the step as kvae.train does (run op by op, every
                # primitive compiles on its own: 41 s against 13 s here)
                model.compile(
                    optimizer=keras.optimizers.SGD(1e-3),
                    jit_compile=keras.backend.backend() == "jax",
                )
                steps = []
                for step in range(PARALLEL_STEPS):
                    rows = slice(step * batch, (step + 1) * batch)
                    logs = model.fit(
                        {"x": x[rows], "noise": noise[rows]},
                        batch_size=batch,
                        epochs=1,
                        shuffle=False,
                        verbose=0,
                    ).history
                    steps.append([logs[key][0] for key in ("loss", "mse", "gamma", "active")])
                gamma_state = [float(np.asarray(v)) for v in model.observation.variables]
                results[devices] = {
                    "steps": steps,
                    "gamma_state": gamma_state,
                    "replicas": len(names),
                }
                np.savez(folder / f"{name}-{devices}.npz", *[np.asarray(w) for w in model.weights])
                model.save(folder / f"{name}-{devices}.keras")
            finally:
                if scope is not None:
                    scope.__exit__(None, None, None)
        report[name] = results
    return {"report": report}


def batch(jobs_path):
    """Run every job of a JSON list [[command, *arguments], ...] in this one
    process (one start-up for many checks); return their results in order."""
    jobs = json.loads(Path(jobs_path).read_text())
    return {"results": [COMMANDS[command](*arguments) for command, *arguments in jobs]}


COMMANDS = {
    "outputs": outputs,
    "gradients": gradients,
    "replay": replay,
    "resume": resume,
    "batch": batch,
    "parallel": parallel,
}

if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "parallel":  # two CPU devices, before the backend starts
        from kvae import distribute

        distribute.simulate_cpu_devices(2)
    result = COMMANDS[command](*arguments)
    import keras

    result["backend"] = keras.backend.backend()
    print(json.dumps(result))
