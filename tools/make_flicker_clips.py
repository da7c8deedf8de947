"""Make NIR clips with a ground-truth colour twin, for measuring flicker against the truth.

From a registered NIR/RGB pair, one camera motion (a pan, a zoom, a rotation, or a still view
with a moving occluder) at a given speed is applied to both photographs, so the NIR clip and
its RGB twin move identically, frame for frame. A colorizer's output on the NIR clip can then
be scored against the twin: its flicker beyond the twin's own (CDC(output) - CDC(twin): real
content change is in both) and its per-frame PSNR (a smoothing that smears motion loses it).

``--demo`` makes the bundled demo clip's twin instead: the same camera path as
``tools/make_demo_clip.py`` over the RGB photographs of the same EPFL country pairs.

The NIR clip is written as the demo clip is (H.264, Y = NIR, full range); the twin losslessly
(``libx264rgb``, crf 0, in MKV). Generated on demand from ``../shared/data``: nothing from it
ships (research-only terms).

    python tools/make_flicker_clips.py --pair street_0005 --motion pan --speed slow --out /tmp/clips
    python tools/make_flicker_clips.py --demo --out /tmp/clips
"""

import argparse
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from make_demo_clip import camera_path, write_clip

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCENES = SHARED / "epfl_scenes"
COUNTRY = SHARED / "epfl_country_hr"
MOTIONS = ("pan", "zoom", "rotate", "occluder")
SPEEDS = {"slow": 1.0, "fast": 3.0}
SIZE = (480, 320)
FPS = 15
DEMO = {"photos": ("0001", "0037", "0034"), "seconds": 3.0, "zoom": 1.3, "pan": 0.8}  # make_demo_clip's defaults


def views(photo: np.ndarray, motion: str, speed: float, frames: int, size: tuple[int, int] = SIZE) -> Iterator[np.ndarray]:
    """``frames`` views of ``photo`` (gray or RGB) along ``motion``; the same call on a registered
    pair's two photographs gives two clips that move identically."""
    out_w, out_h = size
    height, width = photo.shape[:2]
    base = min(width / out_w, height / out_h) / 1.1  # photo pixels per output pixel: room to move
    centre = np.array([width / 2, height / 2])
    for t in range(frames):
        scale, angle, shift = base, 0.0, np.zeros(2)
        if motion == "pan":  # sideways, 1.5 output pixels a frame at speed 1
            shift[0] = (t - frames / 2) * 1.5 * speed * base
        elif motion == "zoom":  # closing in by 20 % over the clip at speed 1
            scale = base / (1 + 0.2 * speed * t / max(frames - 1, 1))
        elif motion == "rotate":  # 0.15 degrees a frame at speed 1
            angle = 0.15 * speed * t
        # output pixel (u, v) -> photo pixel: centre + R(angle) * scale * ((u, v) - output centre) + shift
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        linear = scale * np.array([[c, -s], [s, c]])
        offset = centre + shift - linear @ np.array([out_w / 2, out_h / 2])
        view = cv2.warpAffine(photo, np.hstack([linear, offset[:, None]]), size,
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        if motion == "occluder":  # a dark van crossing the still view, 4 output pixels a frame at speed 1
            left = int(-120 + 4 * speed * t) % (out_w + 120) - 120
            colour = 40 if view.ndim == 2 else (70, 60, 55)
            cv2.rectangle(view, (left, out_h // 2 - 40), (left + 120, out_h // 2 + 50), colour, thickness=-1)
        yield view


def write_twin(frames: Iterator[np.ndarray], path: Path, fps: int = FPS) -> int:
    """RGB frames, losslessly (libx264rgb, crf 0, MKV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=fps, options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "rgb24"
        stream.codec_context.time_base = Fraction(1, fps)
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = count
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode())
    return count


def read_pair(nir_path: Path, rgb_path: Path) -> tuple[np.ndarray, np.ndarray]:
    nir = cv2.imread(str(nir_path), cv2.IMREAD_GRAYSCALE)
    bgr = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
    if nir is None or bgr is None:
        raise SystemExit(f"make_flicker_clips: cannot read {nir_path} and {rgb_path} (is ../shared/data there?)")
    return nir, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _fitted(photo: np.ndarray) -> np.ndarray:
    """Shrunk with area averaging to about 1.1x the clip's size, as make_demo_clip does, so the
    bilinear warp never skips pixels (no aliasing)."""
    shrink = min(photo.shape[1] / SIZE[0], photo.shape[0] / SIZE[1]) / 1.1
    if shrink <= 1:
        return photo
    return cv2.resize(photo, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)


def make_pair_clips(pair: str, motion: str, speed: str, out: Path, seconds: float = 4.0) -> tuple[Path, Path]:
    """The NIR clip and its RGB twin for one ``epfl_scenes`` pair, motion and speed."""
    nir, rgb = (_fitted(photo) for photo in read_pair(SCENES / "nir" / f"{pair}.png", SCENES / "rgb" / f"{pair}.png"))
    frames = round(seconds * FPS)
    stem = out / f"{pair}-{motion}-{speed}"
    nir_clip, twin = stem.with_suffix(".nir.mp4"), stem.with_suffix(".rgb.mkv")
    write_clip(views(nir, motion, SPEEDS[speed], frames), nir_clip, SIZE, FPS, crf=0)
    write_twin(views(rgb, motion, SPEEDS[speed], frames), twin)
    return nir_clip, twin


def make_demo_twin(out: Path) -> Path:
    """The demo clip's RGB twin: make_demo_clip's camera path over the RGB photographs."""
    shots = []
    for name in DEMO["photos"]:
        _, rgb = read_pair(COUNTRY / "nir" / f"{name}.png", COUNTRY / "rgb" / f"{name}.png")
        rgb = _fitted(rgb)
        shots.append(camera_path(rgb, round(DEMO["seconds"] * FPS), SIZE, DEMO["zoom"], DEMO["pan"]))
    twin = out / "nir-demo.rgb.mkv"
    write_twin((view for shot in shots for view in shot), twin)
    return twin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", help="an epfl_scenes pair, such as street_0005")
    parser.add_argument("--motion", choices=MOTIONS, default="pan")
    parser.add_argument("--speed", choices=tuple(SPEEDS), default="slow")
    parser.add_argument("--demo", action="store_true", help="the bundled demo clip's RGB twin")
    parser.add_argument("--out", type=Path, required=True, help="folder for the clips")
    args = parser.parse_args()
    if args.demo:
        print(make_demo_twin(args.out))
    elif args.pair:
        print(*make_pair_clips(args.pair, args.motion, args.speed, args.out))
    else:
        parser.error("give --pair or --demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
