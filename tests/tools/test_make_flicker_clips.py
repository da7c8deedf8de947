"""tools/make_flicker_clips.py: a NIR clip and its colour twin move identically, and the twin is lossless."""

import sys

import av
import cv2
import numpy as np
import pytest

from conftest import REPOSITORY

sys.path.insert(0, str(REPOSITORY / "tools"))
from make_flicker_clips import MOTIONS, SIZE, make_pair_clips, views, write_twin  # noqa: E402


def _photo() -> np.ndarray:
    """An RGB photograph stand-in with structure everywhere, larger than the clip."""
    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return cv2.resize(small, (640, 440), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("motion", MOTIONS)
def test_the_two_photographs_of_a_pair_move_identically(motion):
    rgb = _photo()
    gray = rgb[..., 1].copy()  # a registered second band: same geometry, other values
    colour_views = list(views(rgb, motion, 3.0, 8))
    gray_views = list(views(gray, motion, 3.0, 8))
    assert len(colour_views) == len(gray_views) == 8 and colour_views[0].shape == (SIZE[1], SIZE[0], 3)
    for colour, band in zip(colour_views, gray_views):
        rows = np.r_[0 : SIZE[1] // 2 - 40, SIZE[1] // 2 + 51 : SIZE[1]]  # the van, in each band's own colour, crosses the rest
        scene = rows if motion == "occluder" else slice(None)
        np.testing.assert_array_equal(colour[scene, :, 1], band[scene])
    assert not np.array_equal(colour_views[0], colour_views[-1])  # it moves


def test_the_twin_is_written_losslessly(tmp_path):
    frames = list(views(_photo(), "pan", 1.0, 5))
    assert write_twin(iter(frames), tmp_path / "twin.mkv") == 5
    with av.open(str(tmp_path / "twin.mkv")) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    for written, read in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(written, read)


@pytest.mark.data
def test_a_scene_pair_gives_a_nir_clip_and_its_twin(tmp_path, scenes_root):
    nir_clip, twin = make_pair_clips("street_0005", "zoom", "slow", tmp_path, seconds=1.0)
    with av.open(str(nir_clip)) as a, av.open(str(twin)) as b:
        counts = (sum(1 for _ in a.decode(video=0)), sum(1 for _ in b.decode(video=0)))
    assert counts[0] == counts[1] == 15  # one second at 15 fps, frame for frame
