"""kvae.data: the idx reader, the datasets and the tf.data pipelines (CelebA
preprocessing against PIL, tfds loading under tfds.testing.mock_data, image
folders, synthetic data, the stage-2 latent batches)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from helpers import write_idx
from kvae import data


def pil_celeba(face):
    """The originals' preprocessing written with PIL: crop [45:173, 25:153],
    resize to 64x64 with BILINEAR (scipy.misc.imresize's default)."""
    crop = face[45:173, 25:153]
    return np.asarray(Image.fromarray(crop).resize((64, 64), Image.BILINEAR))


@pytest.mark.parametrize("kind", ["noise", "smooth"])
def test_celeba_crop_and_resize_equal_pil_within_one_grey_level(kind):
    rng = np.random.default_rng(3)
    if kind == "noise":
        face = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    else:
        rows, columns = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
        face = (
            np.stack(
                [127 + 120 * np.sin(rows / 7.0 + c) * np.cos(columns / 11.0) for c in range(3)],
                axis=-1,
            )
            .round()
            .astype(np.uint8)
        )
    ours = data.celeba_crop_resize(tf.constant(face)).numpy()
    assert ours.shape == (64, 64, 3) and ours.dtype == np.uint8
    difference = np.abs(ours.astype(int) - pil_celeba(face).astype(int))
    assert difference.max() <= 1
    # Plain bilinear (no antialias) is a different filter: it must not pass.
    plain = tf.image.resize(face[45:173, 25:153], (64, 64), method="bilinear").numpy()
    if kind == "noise":
        assert np.abs(plain - pil_celeba(face)).max() > 1


def test_celeba_from_tfds_uses_the_official_partition(monkeypatch):
    splits = []
    real_load = tfds.load

    def recording_load(name, split, **kwargs):
        splits.append((name, split))
        return real_load(name, split=split, **kwargs)

    monkeypatch.setattr(tfds, "load", recording_load)
    with tfds.testing.mock_data(num_examples=5):
        dataset = data.load("celeba")
    assert splits == [("celeb_a", "train"), ("celeb_a", "validation")]
    assert dataset.train.shape == (5, 64, 64, 3) and dataset.train.dtype == np.uint8
    assert dataset.shape == data.data_shape("celeba") == (64, 64, 3)


def test_celeba_download_failure_says_how_to_place_the_files(monkeypatch, tmp_path):
    def failing_load(*args, **kwargs):
        raise ConnectionError("Google Drive quota exceeded")

    monkeypatch.setattr(tfds, "load", failing_load)
    with pytest.raises(data.DataError) as raised:
        data.load("celeba", data_dir=tmp_path)
    message = str(raised.value)
    assert "\n" not in message and "ConnectionError" in message
    assert str(tmp_path / "downloads" / "manual") in message
    assert "img_align_celeba.zip" in message and "list_eval_partition.txt" in message


@pytest.mark.parametrize(
    "name,shape", [("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1))]
)
def test_tfds_image_datasets_under_mock_data(name, shape, monkeypatch, tmp_path):
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.delenv("KVAE_DATA_DIR", raising=False)
    with tfds.testing.mock_data(num_examples=7):
        dataset = data.load(name, data_dir=tmp_path)
    assert dataset.train.shape == (7, *shape) and dataset.validation.shape == (7, *shape)
    assert dataset.shape == data.data_shape(name)


def read_epochs(pipeline, clock, epochs):
    """The batches of `pipeline` (a `train_batches`) in epochs `epochs`, as
    fit reads them: the clock set, then the pipeline iterated again."""
    read = []
    for epoch in epochs:
        clock["epoch"] = epoch
        read.append([batch.numpy() for batch in pipeline])
    return read


def test_training_batches_shuffle_drop_the_remainder_and_scale_to_unit_range():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
    dataset = data.Dataset("toy", images, images[:3])
    assert dataset.steps_per_epoch(4) == 2
    clock = {"epoch": 0}
    pipeline = dataset.train_batches(4, seed=0, epoch=lambda: clock["epoch"])
    assert int(pipeline.cardinality()) == 2
    read = read_epochs(pipeline, clock, [0, 1, 2, 1])
    batches = [batch for epoch in read for batch in epoch]
    assert all(batch.shape == (4, 1, 1, 1) and batch.dtype == np.float32 for batch in batches)
    epochs = [np.concatenate(epoch).ravel() for epoch in read]
    for epoch in epochs:  # 8 distinct examples of 10 in each pass of two batches
        assert len(set(epoch.tolist())) == 8
        assert set(np.round(epoch * 255).astype(int).tolist()) <= set(range(0, 200, 20))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every pass
    np.testing.assert_array_equal(epochs[3], epochs[1])  # an epoch is a function of its number
    # The permutation of pass p, from its own generator (NumPy reference).
    for number, epoch in enumerate(epochs[:3]):
        order = np.random.default_rng([0, 1, number]).permutation(10)[:8]
        np.testing.assert_array_equal(np.round(epoch * 255).astype(int), order * 20)
    # Epochs of 3 steps cut the stream of 2-batch passes across pass boundaries.
    odd = dataset.train_batches(4, seed=0, steps=3, epoch=lambda: clock["epoch"])
    stream = np.concatenate(batches[:6]).ravel()
    for epoch, expected in zip((1, 0), (stream[12:24], stream[:12])):
        clock["epoch"] = epoch
        got = np.concatenate(list(odd.as_numpy_iterator())).ravel()
        np.testing.assert_array_equal(got, expected)
    # Validation: every example once, in order, in full batches {"x", "weight"};
    # the last one padded with zero-weight rows (they split over any device count).
    parts = [
        {key: value.numpy() for key, value in b.items()} for b in dataset.validation_batches(2)
    ]
    assert [part["x"].shape for part in parts] == [(2, 1, 1, 1), (2, 1, 1, 1)]
    weights = np.concatenate([part["weight"] for part in parts])
    np.testing.assert_array_equal(weights, [1, 1, 1, 0])
    validation = np.concatenate([part["x"] for part in parts])
    np.testing.assert_allclose(validation[:3].ravel(), images[:3].ravel() / 255.0)
    assert validation[3].max() == 0
    with pytest.raises(data.DataError, match="fewer than one batch"):
        dataset.steps_per_epoch(11)


def test_image_folder_crops_resizes_and_holds_out_a_tenth(tmp_path):
    rng = np.random.default_rng(0)
    pictures = []
    for index in range(12):
        size = (40 + index, 30) if index % 2 else (30, 50)  # (width, height)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        pictures.append(pixels)
        folder = tmp_path / ("a" if index < 6 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    dataset = data.load(f"imagefolder:{tmp_path}", image_size=16)
    assert dataset.train.shape == (11, 16, 16, 3) and dataset.validation.shape == (1, 16, 16, 3)
    # Each image is the centred square resized with PIL BILINEAR.
    expected = []
    for pixels in pictures:
        height, width = pixels.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = Image.fromarray(pixels[top : top + side, left : left + side])
        expected.append(np.asarray(square.resize((16, 16), Image.BILINEAR)))
    every = np.concatenate([dataset.train, dataset.validation])
    assert sorted(map(bytes, every)) == sorted(map(bytes, expected))


def test_image_folder_errors(tmp_path):
    with pytest.raises(data.DataError, match="no images"):
        data.load(f"imagefolder:{tmp_path}")
    with pytest.raises(data.DataError, match="not a readable folder"):
        data.load(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    Image.new("RGB", (8, 8)).save(tmp_path / "fine.png")
    with pytest.raises(data.DataError, match="cannot read .*broken.png"):
        data.load(f"imagefolder:{tmp_path}")


def test_unknown_names_and_unreadable_data_dirs(tmp_path):
    with pytest.raises(data.DataError, match="unknown dataset 'svhn'"):
        data.load("svhn")
    with pytest.raises(data.DataError, match="not a readable folder"):
        data.load("mnist", data_dir=tmp_path / "missing")


def test_sphere_points_lie_on_the_sphere_uniformly():
    points = data.sample_sphere(np.random.default_rng(0), 20000, dim=8, radius=2.5)
    assert points.shape == (20000, 8) and points.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 2.5, rtol=1e-5)
    # Uniform on S_7(R): mean 0 and covariance R^2 / D * I.
    assert np.abs(points.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose(np.cov(points.T), np.eye(8) * 2.5**2 / 8, atol=0.03)


def test_manifold2d_has_three_noise_levels():
    points = data.sample_manifold2d(np.random.default_rng(0), 60000)
    assert points.shape == (60000, 2) and points.dtype == np.float32
    residual = points[:, 1] - 0.6 * np.sin(np.pi * points[:, 0])
    spreads = {}
    for name, (low, high) in {
        "moderate": (-0.9, -0.45),
        "small": (-0.25, 0.25),
        "large": (0.45, 0.9),
    }.items():
        inside = (points[:, 0] > low) & (points[:, 0] < high)
        # The median absolute residual: robust to the few points that the
        # noise carries across a region boundary.
        spreads[name] = np.median(np.abs(residual[inside]))
    assert spreads["small"] < 0.5 * spreads["moderate"] < 0.5 * spreads["large"]
    assert spreads["small"] < 0.01 and spreads["large"] > 0.05


def test_synthetic_batches_are_fresh_every_step():
    dataset = data.load("sphere", dim=3, radius=1.0, seed=1)
    first, second = [b.numpy() for b in dataset.train_batches(50, seed=4).take(2)]
    assert first.shape == (50, 3) and not np.allclose(first, second)
    again = next(iter(dataset.train_batches(50, seed=4))).numpy()
    np.testing.assert_array_equal(first, again)  # seeded
    assert dataset.shape == (3,) and dataset.num_train == 10000
    # A resumed stream (from batch 201: pass 1, its second batch) draws what
    # the whole stream draws there.
    whole = list(itertools.islice(dataset.stream(50, seed=4), 202))
    np.testing.assert_array_equal(next(dataset.stream(50, seed=4, start=201)), whole[201])


def test_latent_batches_draw_fresh_noise_around_the_means():
    mu = np.repeat(np.arange(4, dtype=np.float32)[:, None], 3, axis=1)
    log_sigma = np.full((4, 3), -30.0, np.float32)  # sigma ~ 0: z = mu
    latents = data.LatentDataset("z", mu, log_sigma, mu[:2], log_sigma[:2])
    batch = next(iter(latents.train_batches(4, seed=0))).numpy()
    np.testing.assert_allclose(np.sort(batch[:, 0]), np.arange(4), atol=1e-6)

    zeros = np.zeros((1000, 2), np.float32)
    latents = data.LatentDataset("z", zeros, zeros, zeros[:10], zeros[:10])  # sigma = 1
    clock = {"epoch": 0}
    pipeline = latents.train_batches(500, seed=0, epoch=lambda: clock["epoch"])
    (first, second), (third, _), (again, _) = read_epochs(pipeline, clock, [0, 1, 0])
    assert 0.9 < first.std() < 1.1 and not np.allclose(first, second)
    assert not np.allclose(first, third)  # fresh eps every pass
    np.testing.assert_array_equal(first, again)
    validation = np.concatenate([b["x"].numpy() for b in latents.validation_batches(5)])
    assert validation.shape == (10, 2) and np.abs(validation).max() > 0


def test_manifold2d_exact_log_density_is_a_density_and_matches_monte_carlo():
    """The exact generative model's log p(x) (issue 17's bound): it
    integrates to 1 (checked with wider noise, where a 2-D grid resolves
    it), equals a Monte-Carlo average over t of the Gaussian it integrates,
    and on its own samples beats the same model with other noise levels
    (Gibbs' inequality)."""
    from kvae.data import synthetic

    wide = ((-1.0, -1.0 / 3.0, 0.2), (-1.0 / 3.0, 1.0 / 3.0, 0.15), (1.0 / 3.0, 1.0, 0.25))
    step = 0.025
    xs, ys = np.meshgrid(np.arange(-2.5, 2.5, step), np.arange(-2.0, 2.0, step))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    density = np.exp(synthetic.manifold2d_log_density(grid, regions=wide, grid=601, chunk=4096))
    assert density.sum() * step**2 == pytest.approx(1.0, abs=1e-3)
    rng = np.random.default_rng(0)
    points = synthetic.sample_manifold2d(rng, 5).astype(np.float64)
    t = rng.uniform(-1.0, 1.0, 400_000)
    stds = np.select(
        [(t >= a) & (t <= b) for a, b, _ in synthetic.MANIFOLD2D_REGIONS],
        [s for _, _, s in synthetic.MANIFOLD2D_REGIONS],
    )
    centres = np.stack([t, 0.6 * np.sin(np.pi * t)], axis=1)
    for point, log_p in zip(points, synthetic.manifold2d_log_density(points)):
        gaussians = np.exp(-((point - centres) ** 2).sum(1) / (2 * stds**2)) / (2 * np.pi * stds**2)
        assert log_p == pytest.approx(np.log(gaussians.mean()), abs=0.05)
    sample = synthetic.sample_manifold2d(np.random.default_rng(1), 2000)
    own = synthetic.manifold2d_log_density(sample, grid=2001).mean()
    for factor in (0.7, 1.5):
        other = tuple((a, b, s * factor) for a, b, s in synthetic.MANIFOLD2D_REGIONS)
        assert own > synthetic.manifold2d_log_density(sample, regions=other, grid=2001).mean()


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, array)
    loaded = data.load_idx_images(tmp_path, "train")
    assert loaded.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(loaded[..., 0], array)


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x89PNG not idx")
    with pytest.raises(ValueError, match="not an idx file"):
        data.load_idx_images(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 3, 3)))
    truncated = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()[:-1]
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(truncated)
    with pytest.raises(ValueError, match="expected 18 data bytes"):
        data.load_idx_images(tmp_path, "test")
    with pytest.raises(FileNotFoundError):
        data.load_idx_images(tmp_path / "missing", "train")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "fashion_mnist").mkdir()
    write_idx(tmp_path / "fashion_mnist" / "train-images-idx3-ubyte", np.zeros((1, 28, 28)))
    write_idx(tmp_path / "fashion_mnist" / "t10k-images-idx3-ubyte", np.zeros((1, 28, 28)))
    monkeypatch.setenv("KVAE_DATA_DIR", str(tmp_path))
    assert data.idx_folder("fashion_mnist", None) == tmp_path / "fashion_mnist"
    assert data.idx_folder("mnist", None) is None  # falls back to tfds
