"""Make the bundled demo clip: a slow pan and zoom across real NIR photographs.

The clip stands in for a NIR camera on a moving vehicle: each photo gets a few seconds of
slow zoom with a sideways pan, then a cut to the next. It is written as H.264 whose Y plane
holds the NIR values exactly (full range, neutral chroma), which is what nirstream's video
source reads back.

The default photos are the EPFL RGB-NIR "country" pairs that the shared data MANIFEST could
not match to any VCIP 2020 crop, so the shipped models (trained on VCIP 2020) have not seen
these scenes. The images are research-only: see assets/demo/README.md.

    python tools/make_demo_clip.py [--photos 0001 0037 0034] [--out assets/demo/nir-demo.mp4]
"""

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "epfl_country_hr" / "nir"


def camera_path(photo: np.ndarray, frames: int, size: tuple[int, int], zoom: float, pan: float):
    """``frames`` views of ``photo``: the view narrows by ``zoom`` and drifts sideways by ``pan``.

    A view is an affine map from output pixels to photo pixels, so motion is sub-pixel smooth.
    The first view is the widest window with the output's aspect ratio; later views shrink
    about its centre, which moves ``pan`` of the spare width to the right.
    """
    out_w, out_h = size
    height, width = photo.shape[:2]
    full = min(width / out_w, height / out_h)  # photo pixels per output pixel at the widest view
    for index in range(frames):
        t = index / max(frames - 1, 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * t)  # slow in, slow out
        scale = full / (1 + (zoom - 1) * ease)
        view_w, view_h = out_w * scale, out_h * scale
        spare_x, spare_y = width - view_w, height - view_h
        left = spare_x * (0.5 + pan * (ease - 0.5))
        top = spare_y * 0.5
        matrix = np.array([[1 / scale, 0, -left / scale], [0, 1 / scale, -top / scale]], dtype=np.float64)
        yield cv2.warpAffine(photo, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def write_clip(views, path: Path, size: tuple[int, int], fps: int, crf: int) -> int:
    """Encode 8-bit NIR views as H.264 with Y = NIR and U = V = 128, flagged full range."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "slow"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.color_range = av.video.reformatter.ColorRange.JPEG
        stream.codec_context.time_base = Fraction(1, fps)
        for view in views:
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane, values in zip(frame.planes, (view, *(_neutral(size),) * 2)):
                _fill(plane, values)
            frame.pts = count
            frame.time_base = Fraction(1, fps)
            frame.color_range = av.video.reformatter.ColorRange.JPEG
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode(None))
    return count


def _neutral(size: tuple[int, int]) -> np.ndarray:
    return np.full((size[1] // 2, size[0] // 2), 128, dtype=np.uint8)


def _fill(plane, values: np.ndarray) -> None:
    """Copy rows into a plane whose line size may exceed its width (alignment padding)."""
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    rows[:, : values.shape[1]] = values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", default=["0001", "0037", "0034"],
                        help="EPFL country ids in --data, in clip order")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of NIR PNGs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets/demo/nir-demo.mp4")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 320), metavar=("W", "H"))
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=3.0, help="per photo")
    parser.add_argument("--zoom", type=float, default=1.3, help="zoom factor over one photo's shot")
    parser.add_argument("--pan", type=float, default=0.8, help="sideways drift, as a share of the spare width")
    parser.add_argument("--crf", type=int, default=20)
    args = parser.parse_args()
    if any(side % 2 for side in args.size):
        parser.error("--size must be even (yuv420p)")
    photos = []
    for name in args.photos:
        photo = cv2.imread(str(args.data / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        if photo is None:
            print(f"make_demo_clip: cannot read {args.data / f'{name}.png'}", file=sys.stderr)
            return 1
        # Pre-shrink with area averaging so the bilinear warp never skips pixels (no aliasing).
        shrink = min(photo.shape[1] / args.size[0], photo.shape[0] / args.size[1]) / 1.1
        if shrink > 1:
            photo = cv2.resize(photo, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
        photos.append(photo)
    frames = round(args.seconds * args.fps)
    size = tuple(args.size)
    views = (view for photo in photos for view in camera_path(photo, frames, size, args.zoom, args.pan))
    count = write_clip(views, args.out, size, args.fps, args.crf)
    print(f"{args.out}: {count} frames, {size[0]}x{size[1]} at {args.fps} fps, {args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
