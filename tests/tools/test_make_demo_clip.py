"""tools/make_demo_clip.py: smooth camera moves, and a clip whose Y plane nirstream reads back as NIR."""

import sys

import cv2
import numpy as np

from nirstream.stream.sources import open_source

from conftest import REPOSITORY

sys.path.insert(0, str(REPOSITORY / "tools"))
from make_demo_clip import camera_path, write_clip  # noqa: E402


def test_camera_path_zooms_in_and_pans_right():
    ramp = np.tile(np.linspace(0, 255, 300), (200, 1)).astype(np.uint8)  # brighter to the right
    views = list(camera_path(ramp, 12, (60, 40), zoom=1.5, pan=0.8))
    assert len(views) == 12 and all(v.shape == (40, 60) for v in views)
    spans = [int(v[20, -1]) - int(v[20, 0]) for v in views]
    assert spans[-1] < spans[0] / 1.3  # zoomed in: the view covers less of the ramp
    means = [v.mean() for v in views]
    assert means[-1] > means[0] and all(abs(b - a) < 15 for a, b in zip(means, means[1:]))  # smooth drift


def test_clip_holds_the_nir_values_exactly(tmp_path):
    rng = np.random.default_rng(0)
    views = [cv2.GaussianBlur(rng.integers(0, 256, (48, 64), dtype=np.uint8), (5, 5), 0) for _ in range(5)]
    path = tmp_path / "clip.mp4"
    assert write_clip(iter(views), path, (64, 48), fps=10, crf=0) == 5  # crf 0: lossless luma
    source = open_source(str(path))
    frames = [frame.nir for frame in source]
    source.close()
    assert source.info.fps == 10 and len(frames) == 5
    for written, read in zip(views, frames):
        np.testing.assert_array_equal(read, written)  # full range: no 16-235 squeeze
