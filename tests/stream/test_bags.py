"""Recorded drives: bags of every form in, bags out, read back with an independent reader."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nirstream.core.models import build_model
from nirstream.core.weights import save_weights
from nirstream.stream.cli import main
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sources import open_source
from nirstream.stream.sources.realtime import RealtimeSource

from conftest import REPOSITORY, TINY_COLORMAMBA
from videos import write_video

sys.path.insert(0, str(REPOSITORY / "tools"))
from make_drive_bag import CAMERA_TOPIC, IMU_TOPIC, START_NS, write_drive_bag  # noqa: E402

FPS = 10.0
WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_weights(build_model(dict(TINY_COLORMAMBA)), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def gradient_frames(count: int, dtype=np.uint8) -> list[np.ndarray]:
    """Smooth frames that differ from one another (JPEG keeps them within a few levels)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    high = np.iinfo(dtype).max
    return [((x * 3 + y * 2 + i * 5) % 200 / 255 * high).astype(dtype) for i in range(count)]


def stamps(count: int) -> list[int]:
    return [START_NS + round(i * 1e9 / FPS) for i in range(count)]


def read_mcap(path: Path) -> dict[str, list]:
    """Every message of an MCAP file by topic, read with mcap-ros2-support (not what nirstream reads with)."""
    from mcap_ros2.reader import read_ros2_messages

    topics: dict[str, list] = {}
    for message in read_ros2_messages(str(path)):
        topics.setdefault(message.channel.topic, []).append(message)
    return topics


def read_rosbags(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """(log time, raw bytes) by topic, read with rosbags."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    topics: dict[str, list] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for connection, log_time, data in reader.messages():
            topics.setdefault(connection.topic, []).append((log_time, bytes(data)))
    return topics


def decoded(message) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(message.ros_msg.data), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "storage", "encoding"),
    [("rosbag2_mcap", "mcap", "mono8"), ("rosbag2_db3", "sqlite3", "mono16"), ("bare.mcap", "mcap", "png"),
     ("ros1.bag", "mcap", "mono16"), ("jpeg.mcap", "mcap", "jpeg")],
)
def test_every_form_of_bag_gives_its_frames_with_their_stamps(tmp_path, name, storage, encoding):
    dtype = np.uint16 if encoding == "mono16" else np.uint8
    frames = gradient_frames(7, dtype)
    bag = write_drive_bag(tmp_path / name, frames, fps=FPS, encoding=encoding, storage=storage)
    with open_source(str(bag)) as source:
        read = list(source)
        assert source.topic == CAMERA_TOPIC and source.info.fps == pytest.approx(FPS)
        assert (source.info.width, source.info.height, source.info.frame_count) == (WIDTH, HEIGHT, 7)
        assert source.info.bit_depth == (16 if dtype == np.uint16 else 8)
    assert [f.message.stamp_ns for f in read] == stamps(7)
    assert [f.message.log_time_ns for f in read] == [s + 2_000_000 for s in stamps(7)]
    assert [f.pts for f in read] == pytest.approx([s / 1e9 for s in stamps(7)])
    assert {f.message.frame_id for f in read} == {"nir_camera"}
    for got, want in zip(read, frames):
        assert got.nir.dtype == want.dtype
        if encoding == "jpeg":
            assert np.abs(got.nir.astype(int) - want).mean() < 2
        else:
            np.testing.assert_array_equal(got.nir, want)


def test_sixteen_bit_values_are_kept_as_recorded(tmp_path):
    frame = np.full((HEIGHT, WIDTH), 32768, np.uint16)
    frame[0, 0], frame[0, 1] = 0, 65535
    bag = write_drive_bag(tmp_path / "b", [frame], encoding="mono16")
    with open_source(str(bag)) as source:
        (read,) = list(source)
    assert read.nir.dtype == np.uint16 and read.nir[1, 1] == 32768 and read.nir[0, 1] == 65535


def _foxglove_mcap(path: Path, compressed: bool, stamp_sec: int = 5) -> list[np.ndarray]:
    import foxglove
    from foxglove.channels import CompressedImageChannel, RawImageChannel
    from foxglove.messages import CompressedImage, RawImage, Timestamp

    frames = gradient_frames(3)
    with foxglove.open_mcap(str(path)):
        channel = CompressedImageChannel("/nir") if compressed else RawImageChannel("/nir")
        for i, frame in enumerate(frames):
            time = Timestamp(sec=stamp_sec, nsec=i if stamp_sec else 0)
            if compressed:
                message = CompressedImage(timestamp=time, frame_id="cam", format="png", data=cv2.imencode(".png", frame)[1].tobytes())
            else:
                message = RawImage(timestamp=time, frame_id="cam", width=WIDTH, height=HEIGHT, encoding="mono8",
                                   step=WIDTH, data=frame.tobytes())
            channel.log(message, log_time=1000 + i)
    return frames


@pytest.mark.parametrize("compressed", [False, True])
def test_foxglove_image_schemas_are_read(tmp_path, compressed):
    frames = _foxglove_mcap(tmp_path / "fox.mcap", compressed)
    with open_source(str(tmp_path / "fox.mcap")) as source:
        read = list(source)
    assert [f.message.stamp_ns for f in read] == [5_000_000_000 + i for i in range(3)]
    assert {f.message.frame_id for f in read} == {"cam"}
    for got, want in zip(read, frames):
        np.testing.assert_array_equal(got.nir, want)


def test_a_zero_stamp_falls_back_to_the_log_time(tmp_path):
    _foxglove_mcap(tmp_path / "fox.mcap", compressed=False, stamp_sec=0)
    with open_source(str(tmp_path / "fox.mcap")) as source:
        assert [f.message.stamp_ns for f in source] == [1000, 1001, 1002]


def test_colour_images_are_read_as_gray_with_one_warning(tmp_path, caplog):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    rgb = np.stack([gradient_frames(1)[0]] * 3, axis=2)
    with Writer(tmp_path / "rgb", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/cam", "sensor_msgs/msg/Image", typestore=store)
        for i in range(3):
            message = T["sensor_msgs/msg/Image"](
                header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=i), frame_id="c"),
                height=HEIGHT, width=WIDTH, encoding="bgr8", is_bigendian=0, step=WIDTH * 3, data=rgb.reshape(-1))
            writer.write(connection, i + 1, store.serialize_cdr(message, "sensor_msgs/msg/Image"))
    from loguru import logger

    warnings = []
    handler = logger.add(lambda m: warnings.append(m), level="WARNING")
    try:
        with open_source(str(tmp_path / "rgb")) as source:
            read = list(source)
    finally:
        logger.remove(handler)
    assert len(read) == 3 and sum("reduced to gray" in w for w in warnings) == 1
    np.testing.assert_array_equal(read[0].nir, rgb[:, :, 0])


# --- choosing a topic, and bad input ---------------------------------------------------------------


def _two_camera_bag(path: Path) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, encoding in (("/left", "mono8"), ("/right", "bayer_rggb8")):
            connection = writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=store)
            message = T["sensor_msgs/msg/Image"](
                header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="c"),
                height=HEIGHT, width=WIDTH, encoding=encoding, is_bigendian=0, step=WIDTH,
                data=np.zeros(WIDTH * HEIGHT, np.uint8))
            writer.write(connection, 1, store.serialize_cdr(message, "sensor_msgs/msg/Image"))
        odometry = writer.add_connection("/odom", "std_msgs/msg/String", typestore=store)
        writer.write(odometry, 2, store.serialize_cdr(T["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
    return path


def test_several_image_topics_need_a_topic_and_the_error_lists_them(tmp_path):
    bag = _two_camera_bag(tmp_path / "two")
    with pytest.raises(SourceError, match=r"2 image topics: choose one with --topic \(/left, /right\)"):
        open_source(str(bag))
    with pytest.raises(SourceError, match=r"no topic /nope; its image topics: /left, /right"):
        open_source(str(bag), topic="/nope")
    with pytest.raises(SourceError, match=r"/odom holds std_msgs/msg/String, not images"):
        open_source(str(bag), topic="/odom")
    with open_source(str(bag), topic="/left") as source:
        assert len(list(source)) == 1


def test_an_unknown_encoding_is_named(tmp_path):
    bag = _two_camera_bag(tmp_path / "two")
    with pytest.raises(SourceError, match=r"topic /right: unsupported image encoding 'bayer_rggb8'"):
        open_source(str(bag), topic="/right")


@pytest.mark.parametrize("case", ["no images", "unknown topic", "db3 not a bag", "truncated", "several topics"])
def test_bad_bags_are_one_line_errors(tmp_path, weights, capsys, case):
    if case == "no images":
        bag = write_drive_bag(tmp_path / "d.mcap", gradient_frames(2), camera_topic="/cam")
        bag = _drop_topic(bag, tmp_path / "imu_only", "/cam")
        expected = "no image topics"
        extra = []
    elif case == "unknown topic":
        bag, expected, extra = write_drive_bag(tmp_path / "d", gradient_frames(2)), "no topic /x", ["--topic", "/x"]
    elif case == "db3 not a bag":
        bag = tmp_path / "x.db3"
        bag.write_bytes(b"SQLite format 3\x00" + bytes(100))
        expected, extra = "not a readable bag", []
    elif case == "several topics":
        bag, expected, extra = _two_camera_bag(tmp_path / "two"), "choose one with --topic", []
    else:
        big = [np.tile(frame, (6, 6)) for frame in gradient_frames(30)]  # 384x288: rosbags writes 1 MB chunks
        bag = write_drive_bag(tmp_path / "d.mcap", big)
        data = bag.read_bytes()
        bag.write_bytes(data[: len(data) * 2 // 3])
        expected, extra = "truncated or corrupt MCAP file", []
    out = tmp_path / "out.mcap"
    code = main(["run", "--source", str(bag), "--sink", str(out), "--weights", str(weights), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert code != 0 and len(lines) == 1 and expected in lines[0] and "Traceback" not in err
    if case == "truncated":  # the frames before the cut are kept, under the partial name
        kept = read_mcap(tmp_path / "out.partial.mcap")
        assert 5 < len(kept[f"{CAMERA_TOPIC}/colorized"]) < 30 and "frames kept in" in lines[0]


def _drop_topic(bag: Path, out: Path, topic: str) -> Path:
    """A copy of a bare MCAP bag without one topic: a drive with no camera."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    with AnyReader([bag]) as reader, Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for connection in reader.connections:
            if connection.topic != topic:
                connections[connection.id] = writer.add_connection(connection.topic, connection.msgtype, typestore=reader.typestore)
        for connection, log_time, data in reader.messages():
            if connection.id in connections:
                writer.write(connections[connection.id], log_time, data)
    return out


# --- writing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["mcap", "rosbag2"])
def test_bag_in_bag_out_keeps_stamps_frame_ids_and_every_other_message(tmp_path, weights, form):
    frames = gradient_frames(12)
    bag = write_drive_bag(tmp_path / "drive", frames, fps=FPS)
    digest = _tree_digest(bag)
    out = tmp_path / ("out.mcap" if form == "mcap" else "out_bag")
    sink = str(out) + ("/" if form == "rosbag2" else "")
    assert main(["run", "--source", str(bag), "--sink", sink, "--weights", str(weights)]) == 0
    assert _tree_digest(bag) == digest  # the input is never modified
    mcap_file = out if form == "mcap" else next(out.glob("*.mcap"))
    topics = read_mcap(mcap_file)
    colour = topics[f"{CAMERA_TOPIC}/colorized"]
    assert [m.ros_msg.header.stamp.sec * 10**9 + m.ros_msg.header.stamp.nanosec for m in colour] == stamps(12)
    assert [m.log_time_ns for m in colour] == [s + 2_000_000 for s in stamps(12)]
    assert {m.ros_msg.header.frame_id for m in colour} == {"nir_camera"}
    assert {m.ros_msg.format for m in colour} == {"jpeg"} and decoded(colour[0]).shape == (HEIGHT, WIDTH, 3)
    # every other message copied byte for byte, and nothing else: each input message accounted for
    original, copied = read_rosbags(bag), read_rosbags(out)
    assert set(copied) == {IMU_TOPIC, f"{CAMERA_TOPIC}/colorized"}
    assert copied[IMU_TOPIC] == original[IMU_TOPIC] and len(original[IMU_TOPIC]) > 0
    assert len(copied[f"{CAMERA_TOPIC}/colorized"]) == len(original[CAMERA_TOPIC])


def test_the_colorized_bag_frames_are_the_video_paths_frames(tmp_path, weights):
    """The same frames from a lossless video into PNGs, and from a bag into JPEG messages."""
    frames = gradient_frames(6)
    bag = write_drive_bag(tmp_path / "drive.mcap", frames, fps=FPS, imu=False)
    video = tmp_path / "drive.mkv"
    write_video(video, "ffv1", "gray", frames)
    assert main(["run", "--source", str(bag), "--sink", str(tmp_path / "out.mcap"), "--weights", str(weights)]) == 0
    assert main(["run", "--source", str(video), "--sink", f"{tmp_path / 'png'}/", "--weights", str(weights)]) == 0
    pngs = sorted((tmp_path / "png").glob("*.png"))
    colour = read_mcap(tmp_path / "out.mcap")[f"{CAMERA_TOPIC}/colorized"]
    assert len(pngs) == len(colour) == 6
    for png, message in zip(pngs, colour):
        reference = cv2.imread(str(png))  # the PNG path's frame, as JPEG at the bag sink's quality
        as_jpeg = cv2.imdecode(cv2.imencode(".jpg", reference, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)
        assert np.abs(decoded(message).astype(int) - as_jpeg[:, :, ::-1]).max() <= 1


def test_a_video_into_a_bag_is_stamped_with_the_frames_times(tmp_path, weights):
    out = tmp_path / "out.mcap"
    assert main(["run", "--source", "testsrc:64x48@20", "--max-frames", "4", "--sink", str(out),
                 "--weights", str(weights), "--set", "sink.bag_format=rgb8"]) == 0
    (colour,) = read_mcap(out).values()
    assert [m.ros_msg.header.stamp.nanosec for m in colour] == [0, 50_000_000, 100_000_000, 150_000_000]
    assert colour[0].channel.topic == "/nirstream/colorized" and colour[0].ros_msg.encoding == "rgb8"
    assert (colour[0].ros_msg.width, colour[0].ros_msg.height) == (64, 48)


def test_topic_options_and_no_copy(tmp_path, weights):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(3), fps=FPS)
    out = tmp_path / "out.mcap"
    assert main(["run", "--source", str(bag), "--topic", CAMERA_TOPIC, "--sink", str(out), "--weights", str(weights),
                 "--out-topic", "/colour", "--no-copy-topics"]) == 0
    assert {topic: len(m) for topic, m in read_mcap(out).items()} == {"/colour": 3}


def test_an_existing_bag_is_never_replaced_without_overwrite(tmp_path, weights, capsys):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(2), fps=FPS)
    out = tmp_path / "out.mcap"
    out.write_bytes(b"precious")
    assert main(["run", "--source", str(bag), "--sink", str(out), "--weights", str(weights)]) != 0
    assert out.read_bytes() == b"precious" and "pass --overwrite" in capsys.readouterr().err
    assert main(["run", "--source", str(bag), "--sink", str(out), "--weights", str(weights), "--overwrite"]) == 0
    assert len(read_mcap(out)[f"{CAMERA_TOPIC}/colorized"]) == 2


def test_topic_needs_a_bag(weights, capsys):
    assert main(["run", "--source", "testsrc", "--topic", "/x", "--weights", str(weights)]) != 0
    assert "--topic chooses a bag's camera topic" in capsys.readouterr().err


@pytest.mark.parametrize("folder", [False, True])
def test_a_killed_recording_is_a_bag_the_readers_open_up_to_its_last_chunk(tmp_path, folder):
    """SIGKILL after 25 frames 0.1 s apart: no close, no footer written by the writer."""
    out = tmp_path / ("out_bag" if folder else "out.mcap")
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from nirstream.stream.frame import Frame, StreamInfo
        from nirstream.stream.sinks.bag import BagSink
        sink = BagSink({str(out)!r}, folder={folder})
        sink.open(StreamInfo("t", 32, 24, 10.0, 8, False))
        for i in range(25):
            nir = np.full((24, 32), i, np.uint8)
            sink.write(Frame(i, i / 10, 0.0, nir, np.repeat(nir[:, :, None], 3, axis=2)))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr
    partial = tmp_path / ("out_bag.partial" if folder else "out.partial.mcap")
    assert partial.exists() and not out.exists()
    read = read_rosbags(partial)["/nirstream/colorized"]
    assert 20 <= len(read) <= 25  # chunks close every second of stamps: at most the last second is lost
    mcap_file = next(partial.glob("*.mcap")) if folder else partial
    assert len(read_mcap(mcap_file)["/nirstream/colorized"]) == len(read)
    with open_source(str(partial)) as source:  # and nirstream reads it back
        assert len(list(source)) == len(read)


def test_an_interrupted_bag_run_copies_the_other_topics_up_to_its_last_frame(tmp_path):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(10), fps=FPS)
    from nirstream.stream.sinks.bag import BagSink

    with open_source(str(bag)) as source:
        sink = BagSink(tmp_path / "out.mcap", topic="/c", copy_from=source)
        sink.open(source.info)
        for frame in list(source)[:4]:
            frame.rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            sink.write(frame)
        sink.close(complete=False)
    topics = read_rosbags(tmp_path / "out.partial.mcap")
    last = stamps(4)[-1] + 2_000_000
    imu = [t for t, _ in read_rosbags(bag)[IMU_TOPIC]]
    assert len(topics["/c"]) == 4 and [t for t, _ in topics[IMU_TOPIC]] == [t for t in imu if t <= last]


def test_max_frames_copies_the_other_topics_up_to_the_last_frame_and_counts_the_rest(tmp_path, weights, capsys):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(10), fps=FPS)
    assert main(["run", "--source", str(bag), "--max-frames", "3", "--sink", str(tmp_path / "o.mcap"),
                 "--weights", str(weights)]) == 0
    imu = [t for t, _ in read_rosbags(bag)[IMU_TOPIC]]
    copied = [t for t, _ in read_rosbags(tmp_path / "o.mcap")[IMU_TOPIC]]
    last = stamps(3)[-1] + 2_000_000
    assert copied == [t for t in imu if t <= last]
    assert (f"copied {len(copied)} messages of 1 other topics; {len(imu) - len(copied)} messages after the last "
            "frame were not copied") in capsys.readouterr().err


def test_ros1_topics_are_copied_as_ros2_messages(tmp_path, weights):
    bag = write_drive_bag(tmp_path / "drive.bag", gradient_frames(3), fps=FPS)
    out = tmp_path / "out.mcap"
    assert main(["run", "--source", str(bag), "--sink", str(out), "--weights", str(weights)]) == 0
    imu = read_mcap(out)[IMU_TOPIC]  # decoded by mcap-ros2-support from the ROS 2 schema written
    assert len(imu) == len(read_rosbags(bag)[IMU_TOPIC]) > 0
    first = imu[0].ros_msg
    assert (first.header.stamp.sec, first.header.frame_id, first.linear_acceleration.z) == (1_700_000_000, "imu", 9.81)


def test_foxglove_topics_stay_in_an_mcap_file_and_are_left_out_of_a_rosbag2_folder(tmp_path, weights, capsys):
    import foxglove
    from foxglove.channels import RawImageChannel, Vector3Channel
    from foxglove.messages import RawImage, Timestamp, Vector3

    source = tmp_path / "fox.mcap"
    with foxglove.open_mcap(str(source)):
        camera, speed = RawImageChannel("/nir"), Vector3Channel("/speed")
        for i, frame in enumerate(gradient_frames(3)):
            camera.log(RawImage(timestamp=Timestamp(sec=1, nsec=i), frame_id="c", width=WIDTH, height=HEIGHT,
                                encoding="mono8", step=WIDTH, data=frame.tobytes()), log_time=10 + i)
            speed.log(Vector3(x=float(i), y=0.0, z=0.0), log_time=10 + i)
    assert main(["run", "--source", str(source), "--sink", str(tmp_path / "out.mcap"), "--weights", str(weights)]) == 0
    from mcap.reader import make_reader

    with (tmp_path / "out.mcap").open("rb") as file:
        reader = make_reader(file)
        assert reader.get_header().profile == ""  # not all ROS: no ros2 profile
        topics = {channel.topic: channel.message_encoding for channel in reader.get_summary().channels.values()}
    assert topics == {"/nir/colorized": "cdr", "/speed": "protobuf"}
    assert main(["run", "--source", str(source), "--sink", f"{tmp_path / 'bag'}/", "--weights", str(weights)]) == 0
    assert "not copied: /speed" in capsys.readouterr().err
    assert {topic: len(m) for topic, m in read_rosbags(tmp_path / "bag").items()} == {"/nir/colorized": 3}


def test_overwrite_replaces_a_rosbag2_folder_only_once_the_new_one_is_whole(tmp_path, weights):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(2), fps=FPS)
    out = tmp_path / "out_bag"
    run = ["run", "--source", str(bag), "--sink", f"{out}/", "--weights", str(weights)]
    assert main(run) == 0
    (out / "note.txt").write_text("old")
    assert main(run) != 0 and (out / "note.txt").exists()
    assert main([*run, "--overwrite"]) == 0
    assert not (out / "note.txt").exists() and len(read_rosbags(out)[f"{CAMERA_TOPIC}/colorized"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drive.mcap", "out_bag"]


def test_the_colorized_topic_must_be_new(tmp_path, weights, capsys):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(2), fps=FPS)
    assert main(["run", "--source", str(bag), "--sink", str(tmp_path / "o.mcap"), "--weights", str(weights),
                 "--out-topic", IMU_TOPIC]) != 0
    assert f"the colorized topic {IMU_TOPIC} is a topic of the input already" in capsys.readouterr().err


def test_an_input_cut_in_its_index_still_gives_a_finished_partial_bag(tmp_path, weights, capsys):
    big = [np.tile(frame, (6, 6)) for frame in gradient_frames(12)]  # rosbags' chunks of 1 MB: several
    bag = write_drive_bag(tmp_path / "d.mcap", big, fps=FPS)
    data = bag.read_bytes()
    bag.write_bytes(data[:-300])  # the summary and footer cut off: every message is still there
    out = tmp_path / "o.mcap"
    main(["run", "--source", str(bag), "--sink", str(out), "--weights", str(weights)])
    kept = tmp_path / "o.partial.mcap" if not out.exists() else out
    topics = read_rosbags(kept)  # rosbags needs the footer and index: the file was finished
    assert len(topics[f"{CAMERA_TOPIC}/colorized"]) == 12
    assert len(topics[IMU_TOPIC]) == len(set(t for t, _ in topics[IMU_TOPIC]))  # no message written twice


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()


# --- real time ------------------------------------------------------------------------------------


def test_realtime_replay_releases_each_frame_when_it_is_due(tmp_path):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(5), fps=FPS, imu=False)
    now = [100.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    with RealtimeSource(open_source(str(bag)), clock=lambda: now[0], sleep=sleep) as source:
        assert source.info.live
        captured = [frame.captured_at for frame in source]
    assert captured == pytest.approx([100.0 + i / FPS for i in range(5)])
    assert sum(waits) == pytest.approx(4 / FPS)


def test_realtime_is_a_live_run_that_counts_drops(tmp_path, weights):
    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(5), fps=100.0, imu=False)
    summary = tmp_path / "s.json"
    assert main(["run", "--source", str(bag), "--realtime", "--weights", str(weights),
                 "--summary-json", str(summary)]) == 0
    import json

    (result,) = json.loads(summary.read_text())
    dropped = sum(result["dropped"].values())
    assert result["captured"] == 5 and result["written"] + dropped == 5


@pytest.mark.slow
def test_bench_times_a_bags_own_frames_at_their_size(tmp_path, weights):
    import json

    bag = write_drive_bag(tmp_path / "drive.mcap", gradient_frames(4), fps=FPS)
    assert main(["bench", "--source", str(bag), "--frames", "3", "--model", str(weights), "--out", str(tmp_path)]) == 0
    (result,) = json.loads((tmp_path / "bench.json").read_text())
    assert (result["width"], result["height"], result["frames"]) == (WIDTH, HEIGHT, 3)


def test_a_full_disk_ends_the_bag_at_its_last_whole_record(tmp_path):
    """A file-size limit stands in for a full disk: the write that crosses it fails part-way."""
    out = tmp_path / "out.mcap"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, as on a full disk, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))  # two chunks of ten frames fit
        from nirstream.stream.errors import SinkError
        from nirstream.stream.frame import Frame, StreamInfo
        from nirstream.stream.sinks.bag import BagSink
        sink = BagSink({str(out)!r}, image_format="png")
        sink.open(StreamInfo("t", 128, 96, 10.0, 8, False))
        rng = np.random.default_rng(0)
        try:
            for i in range(200):
                rgb = rng.integers(0, 256, (96, 128, 3), np.uint8)  # noise: about 37 kB a PNG
                sink.write(Frame(i, i / 10, 0.0, rgb[:, :, 0], rgb))
        except SinkError as error:
            print("error:", error)
        sink.close(complete=False)
        print("kept:", sink.frames_written)
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    assert "error: cannot write bag" in process.stdout and "disk full" not in process.stderr
    kept = int(process.stdout.split("kept:")[1])
    read = read_rosbags(tmp_path / "out.partial.mcap")["/nirstream/colorized"]
    assert 0 < len(read) == kept < 200


def test_offered_qos_profiles_are_copied(tmp_path, weights):
    """A latched /tf_static must replay latched: its QoS goes into the channel and metadata.yaml."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, QosTime(0, 0),
                  QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
    with Writer(tmp_path / "in", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        camera = writer.add_connection("/cam", "sensor_msgs/msg/Image", typestore=store)
        tf = writer.add_connection("/tf_static", "std_msgs/msg/String", typestore=store, offered_qos_profiles=[latched])
        writer.write(tf, 1, store.serialize_cdr(T["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
        message = T["sensor_msgs/msg/Image"](
            header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="c"),
            height=HEIGHT, width=WIDTH, encoding="mono8", is_bigendian=0, step=WIDTH, data=gradient_frames(1)[0].reshape(-1))
        writer.write(camera, 2, store.serialize_cdr(message, "sensor_msgs/msg/Image"))
    assert main(["run", "--source", str(tmp_path / "in"), "--sink", f"{tmp_path / 'out'}/", "--weights", str(weights)]) == 0
    from rosbags.highlevel import AnyReader

    with AnyReader([tmp_path / "out"]) as reader:
        durability = {c.topic: [q.durability for q in c.ext.offered_qos_profiles] for c in reader.connections}
    assert durability == {"/cam/colorized": [], "/tf_static": [QosDurability.TRANSIENT_LOCAL]}
