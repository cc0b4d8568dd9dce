"""Image grids a person can look at."""

from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images):
    """Float images in [0, 1] (clipped here, and only here) to uint8."""
    images = np.asarray(images, dtype=np.float32)
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def grid(images, columns, padding=2):
    """Tile images (N, H, W, C) into one uint8 array, row by row, with a
    white `padding`; unfilled cells stay white. C is 1 or 3."""
    images = to_uint8(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"grid takes images (N, H, W, 1 or 3). Received: shape={images.shape}")
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    canvas = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        255,
        np.uint8,
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = image
    return canvas


def grid_picture(images, columns, padding=2):
    """`grid` as a PIL image: grey ("L") for one channel, else RGB."""
    canvas = grid(images, columns, padding)
    return Image.fromarray(canvas[..., 0] if canvas.shape[-1] == 1 else canvas)


def save_grid(images, path, columns, scale=1):
    """Write a PNG grid of `images`; `scale` enlarges it (nearest)."""
    picture = grid_picture(images, columns)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return Path(path)


SCATTER_COLORS = {
    "data": (31, 119, 180),
    "reconstruction": (255, 127, 14),
    "sample": (44, 160, 44),
    "mean": (255, 127, 14),
}


def save_scatter(point_sets, path, size=320, margin=12):
    """Write a PNG scatter plot of 2-D points (the first two coordinates of
    higher-dimensional ones): `point_sets` maps a label of SCATTER_COLORS to
    an (N, D) array; all sets share one square frame, drawn in order, whose
    corners are labelled with their coordinates."""
    from PIL import ImageDraw

    arrays = {label: np.asarray(points, np.float32)[:, :2] for label, points in point_sets.items()}
    every = np.concatenate(list(arrays.values()))
    every = every[np.isfinite(every).all(axis=1)]
    low, high = (every.min(axis=0), every.max(axis=0)) if len(every) else (np.zeros(2), np.ones(2))
    center, half = (low + high) / 2.0, max(float((high - low).max()) / 2.0, 1e-6)
    picture = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    scale = (size / 2.0 - margin) / half
    draw.rectangle((margin, margin, size - margin, size - margin), outline=(160, 160, 160))
    for label, points in arrays.items():
        color = SCATTER_COLORS[label]
        for x, y in points[np.isfinite(points).all(axis=1)]:
            column = size / 2.0 + (x - center[0]) * scale
            row = size / 2.0 - (y - center[1]) * scale
            draw.rectangle((column - 1, row - 1, column + 1, row + 1), fill=color)
    # axes: the frame's coordinates at its corners (x along the bottom, y up the left)
    (low_x, low_y), (high_x, high_y) = center - half, center + half
    draw.text((margin + 2, size - margin - 12), f"x {low_x:.2g}, y {low_y:.2g}", fill=(0, 0, 0))
    draw.text((size - margin - 60, margin + 2), f"x {high_x:.2g}, y {high_y:.2g}", fill=(0, 0, 0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return Path(path)


BAR_COLORS = {"normal": (31, 119, 180), "highlighted": (214, 39, 40), "line": (90, 90, 90)}


def save_bar_plot(
    values,
    path,
    highlighted=(),
    threshold=None,
    top=1.0,
    title="",
    x_label="index",
    y_label="",
    bar_width=12,
    height=200,
    margin=10,
):
    """Write a PNG bar chart of non-negative `values`, one bar per entry,
    scaled so that `top` (or the largest value, if larger) fills the
    height, with axes: a y axis ticked at 0, half and all of that height
    and named `y_label`, an x axis ticked at every bar's index (every 8th
    past 32 bars) and named `x_label`. Bars whose index is in `highlighted`
    are red, the others blue; `threshold` draws a grey horizontal line;
    `title` is written above."""
    from PIL import ImageDraw

    values = np.asarray(values, np.float64)
    highlighted = set(int(index) for index in highlighted)
    scale_top = max(float(top), float(np.nanmax(values)) if len(values) else 0.0, 1e-12)
    title_height = 14 * len(title.splitlines()) + (14 if y_label else 0)
    axis = 40  # room for the y tick labels
    width = max(
        axis + 2 * margin + len(values) * bar_width,
        6 * max(map(len, title.splitlines()), default=0) + 2 * margin,
    )
    picture = Image.new("RGB", (width, height + 2 * margin + title_height + 28), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.multiline_text((margin, margin // 2), title, fill=(0, 0, 0), spacing=2)
    if y_label:
        draw.text((margin, margin // 2 + title_height - 14), y_label, fill=(0, 0, 0))
    left, baseline = margin + axis, margin + title_height + height
    right = left + len(values) * bar_width
    for index, value in enumerate(values):
        bar_left = left + index * bar_width
        bar_top = baseline - height * max(float(value), 0.0) / scale_top
        color = BAR_COLORS["highlighted" if index in highlighted else "normal"]
        draw.rectangle((bar_left + 1, bar_top, bar_left + bar_width - 2, baseline), fill=color)
    if threshold is not None:
        line = baseline - height * float(threshold) / scale_top
        draw.line((left, line, right, line), fill=BAR_COLORS["line"], width=1)
    draw.line((left, baseline, right, baseline), fill=(0, 0, 0), width=1)
    draw.line((left, baseline, left, baseline - height), fill=(0, 0, 0), width=1)
    for fraction in (0.0, 0.5, 1.0):
        row = baseline - height * fraction
        draw.line((left - 4, row, left, row), fill=(0, 0, 0), width=1)
        draw.text((margin, row - 6), f"{scale_top * fraction:.2g}", fill=(0, 0, 0))
    step = 1 if len(values) <= 32 else 8
    for index in range(0, len(values), step):
        center = left + index * bar_width + bar_width / 2
        draw.line((center, baseline, center, baseline + 3), fill=(0, 0, 0), width=1)
        draw.text((center - 3 * len(str(index)), baseline + 4), str(index), fill=(0, 0, 0))
    draw.text(
        (left + (right - left) / 2 - 3 * len(x_label), baseline + 16), x_label, fill=(0, 0, 0)
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return Path(path)


LINE_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)


def save_line_plot(series, path, title="", log_y=False, size=(420, 260), margin=40):
    """Write a PNG line plot: `series` maps a label to (x values, y values);
    each line has its own colour, named in a legend under the title. The
    y range is written at the left edge; `log_y` uses a log scale."""
    from PIL import ImageDraw

    width, height = size
    labels = list(series)
    legend_height = 12 * (len(labels) + 1) + 4
    picture = Image.new("RGB", (width, height + legend_height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.text((margin, 2), title, fill=(0, 0, 0))
    for index, label in enumerate(labels):
        draw.text((margin, 14 + 12 * index), label, fill=LINE_COLORS[index % len(LINE_COLORS)])
    points = {
        label: (np.asarray(xs, np.float64), np.asarray(ys, np.float64))
        for label, (xs, ys) in series.items()
    }
    transform = (lambda v: np.log10(np.clip(v, 1e-300, None))) if log_y else (lambda v: v)
    every_x = np.concatenate([xs for xs, _ in points.values()]) if points else np.zeros(1)
    every_y = (
        np.concatenate([transform(ys) for _, ys in points.values()]) if points else np.zeros(1)
    )
    finite = np.isfinite(every_y)
    x_low, x_high = float(every_x.min()), float(max(every_x.max(), every_x.min() + 1e-12))
    y_low, y_high = (
        (float(every_y[finite].min()), float(every_y[finite].max())) if finite.any() else (0.0, 1.0)
    )
    y_high = max(y_high, y_low + 1e-12)
    top, bottom, left, right = legend_height + 4, legend_height + height - 20, margin, width - 10

    def position(x, y):
        return (
            left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
        )

    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    for index, (xs, ys) in enumerate(points.values()):
        coordinates = [position(x, y) for x, y in zip(xs, transform(ys)) if np.isfinite(y)]
        if len(coordinates) > 1:
            draw.line(coordinates, fill=LINE_COLORS[index % len(LINE_COLORS)], width=2)
    shown = (lambda v: f"{10**v:.3g}") if log_y else (lambda v: f"{v:.3g}")
    draw.text((2, top), shown(y_high), fill=(0, 0, 0))
    draw.text((2, bottom - 10), shown(y_low), fill=(0, 0, 0))
    draw.text((left, bottom + 4), f"{x_low:g}", fill=(0, 0, 0))
    draw.text((right - 30, bottom + 4), f"{x_high:g}", fill=(0, 0, 0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return Path(path)
