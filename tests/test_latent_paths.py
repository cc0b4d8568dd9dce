"""kvae.latent_paths against closed forms: the ends of every path, the
midpoint of the straight line and of the great circle between orthogonal
vectors, constant norm on the circle, and traversal rows that move one
latent only."""

import numpy as np
import pytest

from kvae import latent_paths


def test_linear_and_spherical_paths_have_their_closed_forms():
    a, b = np.eye(3, dtype=np.float32)[:2] * 2.0  # orthogonal, norm 2
    for path in latent_paths.PATHS:
        frames = latent_paths.interpolate(a, b, 5, path)
        assert frames.shape == (5, 3) and frames.dtype == np.float32
        np.testing.assert_allclose(frames[0], a, atol=1e-6)
        np.testing.assert_allclose(frames[-1], b, atol=1e-6)
    linear = latent_paths.interpolate(a, b, 3, "linear")
    np.testing.assert_allclose(linear[1], [1.0, 1.0, 0.0], atol=1e-6)
    spherical = latent_paths.interpolate(a, b, 3, "spherical")
    np.testing.assert_allclose(spherical[1], [np.sqrt(2.0), np.sqrt(2.0), 0.0], atol=1e-6)
    circle = latent_paths.interpolate(a, b, 9, "spherical")
    np.testing.assert_allclose(np.linalg.norm(circle, axis=1), 2.0, rtol=1e-6)
    # at 1/3 of the way the angle from a is 30 degrees
    third = latent_paths.interpolate(a, b, 4, "spherical")[1]
    np.testing.assert_allclose(third, [2 * np.cos(np.pi / 6), 2 * np.sin(np.pi / 6), 0], atol=1e-6)


def test_degenerate_paths_fall_back_to_the_line_and_bad_arguments_are_named():
    a = np.array([1.0, 0.0], np.float32)
    same = latent_paths.interpolate(a, 3 * a, 3, "spherical")  # parallel
    np.testing.assert_allclose(same[1], [2.0, 0.0], atol=1e-6)
    zero = latent_paths.interpolate(np.zeros(2), a, 3, "spherical")
    np.testing.assert_allclose(zero[1], [0.5, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="path must be one of linear, spherical"):
        latent_paths.interpolate(a, a, 3, "cubic")
    with pytest.raises(ValueError, match="steps must be at least 2"):
        latent_paths.interpolate(a, a, 1)


def test_a_traversal_moves_one_latent_per_row_evenly_around_the_point():
    point = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    rows = latent_paths.traverse(point, [2, 0], steps=5, span=2.0)
    assert rows.shape == (10, 4) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[:5, 2], 2.0 + np.array([-2, -1, 0, 1, 2]), atol=1e-6)
    np.testing.assert_allclose(rows[5:, 0], 0.5 + np.array([-2, -1, 0, 1, 2]), atol=1e-6)
    others = np.delete(rows[:5], 2, axis=1)
    np.testing.assert_array_equal(others, np.broadcast_to(np.delete(point, 2), (5, 3)))
    np.testing.assert_array_equal(rows[2], point)  # the middle column is the point itself
