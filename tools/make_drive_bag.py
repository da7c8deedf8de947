"""Make a recorded drive to try nirstream's bag support on: a NIR camera topic and an IMU topic.

The camera frames come from a video (default: the bundled demo clip), stamped at its frame rate
from a fixed start time, ``frame_id`` ``nir_camera``; the IMU runs at 100 Hz beside it. Written
with ``rosbags``, in any of the forms drives are kept in:

    python tools/make_drive_bag.py drive_bag/                       # rosbag2 folder, MCAP storage
    python tools/make_drive_bag.py drive_bag/ --storage sqlite3     # rosbag2 folder, .db3 storage
    python tools/make_drive_bag.py drive.mcap                       # a bare MCAP file
    python tools/make_drive_bag.py drive.bag                        # ROS 1
    python tools/make_drive_bag.py drive.mcap --encoding jpeg --frames 100

then ``nirstream run --source drive_bag/ --sink colorized_bag/``. Encodings: ``mono8``,
``mono16`` (the 8-bit frames scaled to 16 bits) and ``jpeg``/``png`` (CompressedImage).
"""

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

CAMERA_TOPIC = "/cam/nir/image_raw"
IMU_TOPIC = "/imu/data"
START_NS = 1_700_000_000_000_000_000
"""2023-11-14 22:13:20 UTC: the stamps of a drive, far from zero like any real clock."""
IMU_HZ = 100


def video_frames(path: str | Path, count: int | None) -> list[np.ndarray]:
    """Up to ``count`` frames of a video as H×W uint8 gray images."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray"))
            if count is not None and len(frames) >= count:
                break
    return frames


def write_drive_bag(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float = 30.0,
    encoding: str = "mono8",
    storage: str = "mcap",
    camera_topic: str = CAMERA_TOPIC,
    imu: bool = True,
    start_ns: int = START_NS,
    log_delay_ns: int = 2_000_000,
) -> Path:
    """Write ``frames`` (H×W uint8 or uint16) as a drive bag at ``path``; returns ``path``.

    ``path`` ending in ``.mcap`` is a bare MCAP file, ``.bag`` a ROS 1 bag, anything else a
    rosbag2 folder with ``storage`` (mcap or sqlite3). Each frame's header stamp is
    ``start_ns + i / fps``; its log time is ``log_delay_ns`` later, as a recorder receives it.
    """
    path = Path(path)
    if path.suffix == ".bag":
        return _write_ros1(path, list(frames), fps, encoding, camera_topic, imu, start_ns, log_delay_ns)
    if path.suffix == ".mcap":
        with tempfile.TemporaryDirectory() as folder:
            bag = write_drive_bag(Path(folder) / path.stem, frames, fps=fps, encoding=encoding, storage="mcap",
                                  camera_topic=camera_topic, imu=imu, start_ns=start_ns, log_delay_ns=log_delay_ns)
            shutil.move(str(next(bag.glob("*.mcap"))), path)
        return path
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        msgtype = _camera_type(encoding)
        camera = writer.add_connection(camera_topic, msgtype, typestore=store)
        imu_connection = writer.add_connection(IMU_TOPIC, "sensor_msgs/msg/Imu", typestore=store) if imu else None
        for stamp, kind, message in _messages(store, frames, fps, encoding, imu, start_ns):
            connection = camera if kind == "camera" else imu_connection
            writer.write(connection, stamp + log_delay_ns, store.serialize_cdr(message, connection.msgtype))
    return path


def _camera_type(encoding: str) -> str:
    return "sensor_msgs/msg/CompressedImage" if encoding in ("jpeg", "png") else "sensor_msgs/msg/Image"


def _messages(store, frames: Iterable[np.ndarray], fps: float, encoding: str, imu: bool, start_ns: int):
    """(stamp, "camera" | "imu", message) in stamp order: each frame, then the IMU samples up to the next."""
    types = store.types
    Time, Header = types["builtin_interfaces/msg/Time"], types["std_msgs/msg/Header"]

    ros1 = "seq" in Header.__dataclass_fields__

    def header(stamp: int, frame_id: str):
        time = Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
        return Header(seq=0, stamp=time, frame_id=frame_id) if ros1 else Header(stamp=time, frame_id=frame_id)

    imu_period = round(1e9 / IMU_HZ)
    next_imu = start_ns
    frame_period = 1e9 / fps
    count = 0
    for index, frame in enumerate(frames):
        stamp = start_ns + round(index * frame_period)
        while imu and next_imu < stamp:
            yield next_imu, "imu", _imu(types, header(next_imu, "imu"), next_imu - start_ns)
            next_imu += imu_period
        yield stamp, "camera", _image(types, header(stamp, "nir_camera"), frame, encoding)
        count += 1
    end = start_ns + round(count * frame_period)
    while imu and next_imu < end:
        yield next_imu, "imu", _imu(types, header(next_imu, "imu"), next_imu - start_ns)
        next_imu += imu_period


def _image(types, header, frame: np.ndarray, encoding: str):
    if encoding in ("jpeg", "png"):
        ok, data = cv2.imencode(".jpg" if encoding == "jpeg" else ".png", frame)
        assert ok
        return types["sensor_msgs/msg/CompressedImage"](header=header, format=encoding, data=data.reshape(-1))
    if encoding == "mono16" and frame.dtype == np.uint8:
        frame = frame.astype(np.uint16) * 257
    height, width = frame.shape
    return types["sensor_msgs/msg/Image"](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * frame.dtype.itemsize, data=np.ascontiguousarray(frame).view(np.uint8).reshape(-1),
    )


def _imu(types, header, elapsed_ns: int):
    t = elapsed_ns / 1e9
    Vector3, Quaternion = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Quaternion"]
    covariance = np.zeros(9, dtype=np.float64)
    return types["sensor_msgs/msg/Imu"](
        header=header,
        orientation=Quaternion(x=0.0, y=0.0, z=float(np.sin(t / 20)), w=float(np.cos(t / 20))),
        orientation_covariance=covariance,
        angular_velocity=Vector3(x=0.0, y=0.0, z=0.05 * float(np.cos(t))),
        angular_velocity_covariance=covariance,
        linear_acceleration=Vector3(x=0.3 * float(np.sin(t)), y=0.0, z=9.81),
        linear_acceleration_covariance=covariance,
    )


def _write_ros1(path: Path, frames, fps, encoding, camera_topic, imu, start_ns, log_delay_ns) -> Path:
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    with Writer(path) as writer:
        camera = writer.add_connection(camera_topic, _camera_type(encoding), typestore=store)
        imu_connection = writer.add_connection(IMU_TOPIC, "sensor_msgs/msg/Imu", typestore=store) if imu else None
        for stamp, kind, message in _messages(store, frames, fps, encoding, imu, start_ns):
            connection = camera if kind == "camera" else imu_connection
            writer.write(connection, stamp + log_delay_ns, store.serialize_ros1(message, connection.msgtype))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a folder (rosbag2), a .mcap file, or a .bag file (ROS 1)")
    parser.add_argument("--video", help="the NIR video to take frames from (default: the bundled demo clip)")
    parser.add_argument("--frames", type=int, help="at most this many frames (default: all)")
    parser.add_argument("--encoding", default="mono8", choices=("mono8", "mono16", "jpeg", "png"))
    parser.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="a rosbag2 folder's storage")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"make_drive_bag: {args.out} exists: choose another name", file=sys.stderr)
        return 2
    if args.video is None:
        from nirstream.core.assets import demo_clip

        args.video = demo_clip()
    frames = video_frames(args.video, args.frames)
    write_drive_bag(args.out, frames, fps=args.fps, encoding=args.encoding, storage=args.storage)
    print(f"{args.out}: {len(frames)} frames on {CAMERA_TOPIC} ({args.encoding}) and {IMU_HZ} Hz IMU on {IMU_TOPIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
