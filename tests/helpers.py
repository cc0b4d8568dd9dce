"""Shared test helpers."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("backend_worker.py")

TINY_RESNET = {"base_dim": 4, "num_scale": 2, "fc_dim": 8}
"""A ResNet small enough for CPU tests, same layout as the real one."""


def tiny_resnet(gamma="computed", side=8, channels=1, latent_dim=4, **kwargs):
    import kvae

    return kvae.VAE(
        (side, side, channels),
        latent_dim,
        net="resnet",
        net_config=TINY_RESNET,
        gamma=gamma,
        **kwargs,
    )


def random_images(n, side=8, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, side, side, channels)).astype("float32")


PARALLEL_STEPS = 3
"""Steps of the one-device / two-device comparisons."""

PARALLEL_CASES = {
    "resnet-computed": (lambda: tiny_resnet("computed", side=8), 8),
    "infogan-learned": (lambda: _infogan("learned"), 8),
    "resnet-computed-mixed_float16": (
        lambda: tiny_resnet("computed", side=8, precision="mixed_float16"),
        8,
    ),
}
"""(build, global batch) of the data-parallel equivalence tests."""


def _infogan(gamma):
    import kvae

    return kvae.VAE((8, 8, 1), 4, net="infogan", net_config={"fc_dim": 16}, gamma=gamma)


def model_outputs(model, inputs):
    """encode / decode / reconstruct on inputs["x"], inputs["z"] as NumPy;
    called in the same order in and out of process, since the InfoGAN's
    spectral-norm state moves on every forward pass."""
    from keras import ops

    mu, log_sigma = model.encode(inputs["x"])
    decoded = model.decode(inputs["z"])
    outputs = {"mu": mu, "log_sigma": log_sigma}
    if isinstance(decoded, (list, tuple)):  # per-pixel sigma, floored or not
        outputs["log_gamma"] = model.observation.log_gamma(decoded[1])
        decoded = decoded[0]
    outputs["decoded"] = decoded
    outputs["reconstruction"] = model.reconstruct(inputs["x"])
    return {key: ops.convert_to_numpy(value) for key, value in outputs.items()}


def run_worker(backend, *args, timeout=300):
    """Run tests/backend_worker.py in a fresh process on `backend`; return
    the JSON object it prints last."""
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"worker {args} on {backend} failed:\n{result.stdout}\n{result.stderr}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_worker_batch(backend, jobs, folder, timeout=600):
    """Run many worker jobs [(command, *arguments), ...] in one fresh process
    on `backend`; return their results in order."""
    path = Path(folder) / f"jobs-{backend}.json"
    path.write_text(json.dumps([[str(part) for part in job] for job in jobs]))
    result = run_worker(backend, "batch", path, timeout=timeout)
    assert result["backend"] == backend
    return result["results"]


def free_ports(count):
    """`count` distinct TCP ports free on loopback now (each socket stays
    bound until all are chosen)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_side_by_side(runs, timeout=600):
    """Start every (command, env) of `runs` from the repository root at
    once and wait for all: returns (exit codes, outputs with stderr).
    Whatever is still running at the end (a timeout) is killed."""
    root = Path(__file__).resolve().parent.parent
    processes = [
        subprocess.Popen(
            [str(part) for part in command],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command, env in runs
    ]
    try:
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [process.returncode for process in processes], outputs


def write_idx(path, array):
    """Write `array` as a uint8 idx file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


# -- a stand-in for the papers' Inception archive ------------------------------------------------

FAKE_POOL = 23
"""The stand-in graph averages 23x23 blocks of the 299x299 input (13x13 left)."""


def fake_inception_weights():
    """The stand-in graph's matrix: 13 * 13 * 3 pooled values -> 2048 features."""
    return np.random.default_rng(7).standard_normal((13 * 13 * 3, 2048)).astype("float32") / 8.0


PANDA_ANSWER = (
    (
        169,
        "n02510455",
        "giant panda, panda, panda bear, coon bear, Ailuropoda melanoleuca",
        0.89107,
    ),
    (75, "n02497673", "indri, indris, Indri indri, Indri brevicaudatus", 0.00779),
    (
        7,
        "n02509815",
        "lesser panda, red panda, panda, bear cat, cat bear, Ailurus fulgens",
        0.00296,
    ),
    (900, "n07760859", "custard apple", 0.00147),
    (500, "n09256479", "earthstar", 0.00117),
)
"""(softmax index, WordNet id, human label, score) of the published top five
for cropped_panda.jpg; the stand-in's default answer."""


def panda_scores(answer=PANDA_ANSWER, classes=1008):
    """A softmax vector (summing to 1) whose top entries are `answer`'s
    scores; the rest of the mass is spread unevenly over the other classes."""
    others = np.ones(classes, bool)
    others[[index for index, *_ in answer]] = False
    scores = np.zeros(classes, np.float64)
    spread = np.linspace(0.5, 1.5, int(others.sum()))
    scores[others] = spread / spread.sum() * (1.0 - sum(score for *_, score in answer))
    for index, _, _, score in answer:
        scores[index] = score
    return scores.astype("float32")


def write_fake_inception_archive(path, answer=PANDA_ANSWER, leave_out=()):
    """An inception-2015-12-05.tgz look-alike: a GraphDef with the real one's
    tensor names on the paths kvae uses: ExpandDims:0 for any image size ->
    ResizeBilinear to 299 -> Sub 128 -> Mul 1/128 -> ... -> pool_3:0 with
    2048 features (computing `fake_inception_features`, not Inception), and
    DecodeJpeg/contents:0 (JPEG bytes, decoded) -> softmax:0 answering the
    scores of `answer` (`panda_scores`); with cropped_panda.jpg and the two
    label maps naming `answer`'s classes. `leave_out` names members to omit."""
    import io
    import tarfile

    import tensorflow as tf
    from PIL import Image

    graph = tf.Graph()
    with graph.as_default():
        decoded = tf.compat.v1.placeholder(tf.float32, [None, None, 3], name="Cast")
        batch = tf.expand_dims(decoded, 0, name="ExpandDims")
        resized = tf.compat.v1.image.resize_bilinear(batch, [299, 299], name="ResizeBilinear")
        scaled = tf.multiply(tf.subtract(resized, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        pooled = tf.nn.avg_pool2d(scaled, FAKE_POOL, FAKE_POOL, "VALID")
        flat = tf.reshape(pooled, [-1, 13 * 13 * 3])
        features = tf.tanh(tf.matmul(flat, tf.constant(fake_inception_weights())))
        tf.reshape(features, [-1, 1, 1, 2048], name="pool_3")
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        pixels = tf.cast(tf.io.decode_jpeg(contents, channels=3), tf.float32)
        scores = tf.constant(panda_scores(answer)[None]) + 0.0 * tf.reduce_mean(pixels)
        tf.identity(scores, name="softmax")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(jpeg, "JPEG")
    label_map = "".join(
        f'entry {{\n  target_class: {index}\n  target_class_string: "{uid}"\n}}\n'
        for index, uid, _, _ in answer
    )
    synsets = "".join(f"{uid}\t{text}\n" for _, uid, text, _ in answer)
    members = {
        "LICENSE": b"test stand-in\n",
        "classify_image_graph_def.pb": graph.as_graph_def().SerializeToString(),
        "cropped_panda.jpg": jpeg.getvalue(),
        "imagenet_2012_challenge_label_map_proto.pbtxt": label_map.encode(),
        "imagenet_synset_to_human_label_map.txt": synsets.encode(),
    }
    with tarfile.open(path, "w:gz") as bundle:
        for name, content in members.items():
            if name in leave_out:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            bundle.addfile(info, io.BytesIO(content))
    return path


def legacy_resize_bilinear(images, side):
    """TF1's resize_bilinear (align_corners=False, no half-pixel centres) in
    NumPy: output pixel i reads input coordinate i * in / out."""
    images = np.asarray(images, np.float64)

    def along(array, axis):
        size = array.shape[axis]
        coordinates = np.arange(side) * (size / side)
        low = np.floor(coordinates).astype(int)
        high = np.minimum(low + 1, size - 1)
        weight = (coordinates - low).reshape([-1 if a == axis else 1 for a in range(array.ndim)])
        return np.take(array, low, axis) * (1 - weight) + np.take(array, high, axis) * weight

    return along(along(images, 1), 2)


def fake_inception_features(mul_input):
    """The stand-in's features of the values at its Mul:0 (N, 299, 299, 3)."""
    n = len(mul_input)
    blocks = np.asarray(mul_input, np.float64).reshape(n, 13, FAKE_POOL, 13, FAKE_POOL, 3)
    pooled = blocks.mean(axis=(2, 4)).reshape(n, -1)
    return np.tanh(pooled @ fake_inception_weights().astype(np.float64))


def fake_inception_dai2019(pixels_0_255):
    """The stand-in's features of pixels fed at ExpandDims:0."""
    return fake_inception_features((legacy_resize_bilinear(pixels_0_255, 299) - 128.0) / 128.0)


# -- kinks: the points where ReLU and leaky ReLU change slope -------------------------------------

KINK_MARGIN = 4e-5
"""How far (relative to its layer's largest absolute value) every input of a
ReLU or leaky ReLU is kept from 0 in the backend-parity batch. The forward
passes of TensorFlow (oneDNN or Eigen) and JAX (XLA for AVX-512, AVX2 or
SSE4.2) on the same weights differed by at most 4e-6 of a layer's largest
value in the measurements behind tests/test_backends.py, so a margin ten
times larger leaves every kink on the same side on every x86-64 CPU."""


def _kink_layers(network):
    """The layers of a functional network whose output has a kink at 0:
    ReLU, LeakyReLU, and Dense layers with a ReLU activation."""
    import keras

    found = []
    for layer in network.layers:
        if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
            found.append(layer)
        elif isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.relu:
            found.append(layer)
    return found


def _pre_activation(layer, inputs):
    """The values at the kink of `layer` (its input, or a ReLU Dense's
    affine output), as float64 NumPy."""
    import keras

    values = np.asarray(keras.ops.convert_to_numpy(inputs), np.float64)
    if isinstance(layer, keras.layers.Dense):
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), np.float64)
        bias = np.asarray(keras.ops.convert_to_numpy(layer.bias), np.float64)
        values = values @ kernel + bias
    return values


def kink_inputs(model, x, noise):
    """{"encoder/NAME" or "decoder/NAME": pre-activation values} of every
    kink layer in one training-mode forward pass of `model` on (x, noise), as
    `VAE.loss_and_gradients` runs it (before any offset of
    `apply_kink_offsets`); the model's variables (batch-norm statistics,
    spectral-norm vectors) are put back afterwards."""
    import keras

    from kvae import losses

    saved = [keras.ops.convert_to_numpy(v) for v in model.variables]
    try:
        values, outputs = {}, {}
        for network, inputs in (("encoder", x), ("decoder", None)):
            net = getattr(model, network)
            layers = _kink_layers(net)
            probe = keras.Model(net.inputs, [*net.outputs, *[layer.input for layer in layers]])
            if inputs is None:
                mu, log_sigma = outputs["encoder"][:2]
                inputs = losses.gaussian_sample(mu, log_sigma, noise)
            result = probe(inputs, training=True)
            outputs[network] = result
            for layer, tensor in zip(layers, result[len(net.outputs) :]):
                values[f"{network}/{layer.name}"] = _pre_activation(layer, tensor)
        return values
    finally:
        for variable, value in zip(model.variables, saved):
            variable.assign(value)


def kink_offsets(model, x, noise, margin=KINK_MARGIN, rounds=100):
    """Constant offsets (float32, by kink layer) that move each pre-activation
    lying within `margin` of a layer's largest absolute value from 0 out to
    that distance, on its own side; found layer by layer in forward order
    (moving one layer's inputs moves the later layers' a little), and
    checked. Elsewhere the offsets are 0. With them (`apply_kink_offsets`),
    rounding differences between CPUs or backends cannot put an input on the
    other side of a kink, where the slope, and so the gradient, jumps."""
    offsets = {}
    for _ in range(rounds):
        with apply_kink_offsets(model, offsets):
            values = kink_inputs(model, x, noise)
        changed = False
        for name, h in values.items():
            offset = offsets.get(name, np.zeros(h.shape, np.float32))
            h = h + offset  # what the kink sees
            limit = margin * np.abs(h).max()
            close = np.abs(h) < limit
            if close.any():
                target = np.where(h >= 0, limit, -limit) * 1.01
                offsets[name] = offset + np.where(close, target - h, 0.0).astype(np.float32)
                changed = True
                break  # later layers moved: probe again
        if not changed:
            return offsets
    raise AssertionError(f"kink offsets did not settle in {rounds} rounds")


class apply_kink_offsets:  # noqa: N801 (used as a context manager, like a function)
    """Within the block, each kink layer of the model adds its offset to
    the values at its kink (`kink_offsets`), on either backend."""

    def __init__(self, model, offsets):
        self.model, self.offsets, self.undo = model, offsets, []

    def __enter__(self):
        import keras

        for network in ("encoder", "decoder"):
            for layer in _kink_layers(getattr(self.model, network)):
                offset = self.offsets.get(f"{network}/{layer.name}")
                if offset is None:
                    continue
                if isinstance(layer, keras.layers.Dense):
                    relu = layer.activation
                    layer.activation = lambda t, relu=relu, o=offset: relu(t + o)
                    self.undo.append(
                        lambda layer=layer, relu=relu: setattr(layer, "activation", relu)
                    )
                else:
                    call = layer.call
                    layer.call = lambda t, call=call, o=offset: call(t + o)
                    self.undo.append(lambda layer=layer: vars(layer).pop("call"))
        return self

    def __exit__(self, *error):
        for undo in reversed(self.undo):
            undo()
        self.undo = []


def assert_close_in_ulps(actual, expected, ulps=8, err_msg=""):
    """For arrays recorded on another machine: equal within `ulps` float32
    ulps at the largest magnitude in `expected`. Another CPU's instruction
    set sums a forward pass's float32 products in another order, so files
    recorded elsewhere differ in their last bits (issue 27 saw 1 ulp); bit
    equality is promised on one machine only."""
    expected = np.asarray(expected, np.float32)
    atol = ulps * float(np.spacing(np.abs(expected).max()))
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=0, atol=atol, err_msg=err_msg)
