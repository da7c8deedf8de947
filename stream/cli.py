"""The ``nirstream`` command line: one entry point, a subcommand per job.

Errors the user can fix (:class:`~nirstream.core.errors.NirstreamError`, missing files, a full
disk) print one line and exit non-zero; ``--debug`` shows the traceback. Heavy imports happen
inside each command so ``nirstream --help`` answers at once.
"""

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import get_args

from loguru import logger

from nirstream.core import __version__
from nirstream.stream.choices import Backend, Device, Precision
from nirstream.core.files import free_path

DEMO_OUTPUT = "nirstream-demo.mp4"

EXAMPLES = {
    "run": """examples:
  nirstream run                                   # the bundled demo clip -> nirstream-demo.mp4
  nirstream run --side-by-side                    # the same, NIR | RGB side by side
  nirstream run --source drive.mp4 --sink colorized.mp4
  nirstream run --source cam0 --sink window --sink live.mp4 --config live-camera
  nirstream run --source 'drives/*.mp4' --sink out/ --config recorded-drive --weights W.safetensors
  nirstream run --source 'drives/**/*.mp4' --sink /shared/out/ --cluster ray          # a local Ray, or RAY_ADDRESS
  nirstream run --source 'drives/**/*.mp4' --sink /shared/out/ --cluster ray://head:10001 --tries 3
  nirstream run --source testsrc --sink null --config benchmark --max-frames 300 --summary-json stats.json
  nirstream run --source frames/ --sink out.mp4 --weights W.safetensors --set engine.tile=384
  nirstream run --source drive_bag/ --topic /cam/nir/image_raw --sink colorized_bag/   # a rosbag2 folder in and out
  nirstream run --source drive.mcap --sink colorized.mcap --sink foxglove              # and watch it in Foxglove
  nirstream run --source drive.mcap --sink null --realtime --summary-json live.json    # latency as if the camera were live

The model: --weights FILE, else --model NAME (a shipped model, or a model config run untrained
for timing), else the best shipped model for the device: colormamba-lite on a CPU;
colormamba-base on CUDA once its weights ship, colormamba-lite until then.""",
    "train": """examples:
  nirstream train --config colormamba-lite --init colormamba-lite --set optim.epochs=2 --set run.max_steps_per_epoch=10   # a quick try
  nirstream train --config colormamba-lite
  nirstream train --config configs/train/colormamba-lite.yaml --set optim.epochs=5 --set data.batch_size=4
  nirstream train --config colormamba-lite --resume runs/colormamba-lite/checkpoint.pt
  nirstream train --config colormamba-lite --init colormamba-lite --set data.root=my_pairs   # fine-tune
  torchrun --nproc-per-node 2 --no-python nirstream train --config colormamba-base""",
    "eval": """examples:
  nirstream eval --model colormamba-lite --data ../shared/data/vcip2020_nir --split val
  nirstream eval --weights runs/colormamba-lite/best.safetensors --data ../shared/data/vcip2020_nir --split val
  nirstream eval --weights W.safetensors --data pairs.csv --out results/ --sheet-rows 6
  nirstream eval --model colormamba-lite --config colormamba-lite   # every validation set that recipe selects on
  nirstream eval --model colormamba-lite --config colormamba-lite --test   # its fixed test split, by category
  nirstream eval --model colormamba-lite --data ../shared/data/epfl_scenes --split none --only street_0005,street_0011""",
    "bench": """examples:
  nirstream bench                                 # the default model, eager fp32, three resolutions
  nirstream bench --model colormamba-base --backend compile --precision fp16 --size 1920x1080
  nirstream bench --model colormamba-lite --backend eager --backend compile --precision fp32 --precision fp16
  nirstream bench --model colormamba-paper --precision auto --set engine.tile_batch=auto --out bench/paper
  nirstream bench --source drive.mcap --topic /cam/nir/image_raw --frames 200   # a drive's own frames

Each configuration reports fps, latency p50/p99 from decoded frame to RGB in host memory, peak
GPU memory, FLOPs per frame, the floor they imply at the device's measured matrix rate, and the
fraction of that rate reached. Results go to OUT/bench.json and OUT/bench.png.""",
    "cameras": """examples:
  nirstream cameras                               # then: nirstream run --source cam0 --sink window""",
    "export": """examples:
  nirstream export --format onnx --out colormamba-lite.onnx --size 640x512
  nirstream export --model colormamba-lite --format onnx --out tile.onnx --size 640x640 --batch 4
  nirstream export --weights W.safetensors --format tensorrt --precision fp16 --out W-fp16.ep --size 1920x1080

ONNX is checked with onnxruntime against PyTorch on frames of the demo clip (--check-source to
use your own); TensorRT needs a CUDA machine with torch-tensorrt.""",
}


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are JSON objects too when the command line asks for ``--log-json``."""

    json_errors = False

    def error(self, message: str):
        if not _Parser.json_errors:
            super().error(message)
        import json

        print(json.dumps({"level": "ERROR", "message": f"{self.prog}: {message}", "exit_code": 2}), file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nirstream",
        description="Real-time near-infrared to RGB colorization with ColorMamba.",
        epilog="Run 'nirstream COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"nirstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in (_add_run, _add_train, _add_eval, _add_bench, _add_export, _add_cameras):
        add_command(commands)
    return parser


def _command(commands: argparse._SubParsersAction, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand with its examples and the options every command has (--debug, --log-json)."""
    command = commands.add_parser(
        name, help=summary, description=description, epilog=EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    command.add_argument("--log-json", action="store_true", help="log one JSON object per line (for machines)")
    return command


def _add_overrides(command: argparse.ArgumentParser, example: str) -> None:
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help=f"override a config value, e.g. {example} (repeatable)")


def _add_device(command: argparse.ArgumentParser) -> None:
    command.add_argument("--device", default="auto", choices=get_args(Device),
                         help="where the model runs: auto takes CUDA when there is a GPU (default: auto)")


def _add_weights_or_model(command: argparse.ArgumentParser, *, required: bool, model_help: str) -> None:
    which = command.add_mutually_exclusive_group(required=required)
    which.add_argument("--weights", type=Path, help="a .safetensors weights file")
    which.add_argument("--model", help=model_help)


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = _command(
        commands, "run", "colorize a camera, video, stream or image folder",
        "Colorize NIR frames from SOURCE into one or more sinks. SOURCE is a camera (cam0, 0, "
        "/dev/video0), a video file or glob, an rtsp:// or http:// stream, a recorded drive (a rosbag2 "
        "folder, .mcap, .db3 or ROS 1 .bag), an image folder or glob, or testsrc. SINK is a video file "
        "(.mp4, .mkv, .mov), an MCAP file (.mcap), a folder (ending in /: images, or a rosbag2 folder when "
        "SOURCE is a bag), window, preview[:PORT] (a live page on 127.0.0.1), foxglove[:PORT] (a Foxglove "
        "WebSocket server on 127.0.0.1), or null.",
    )
    run.add_argument("--source", help="camera, file, glob, URL, folder or testsrc "
                                      "(default: the bundled demo clip)")
    run.add_argument("--sink", dest="sinks", action="append", metavar="SINK",
                     help=f"output (repeatable; missing folders are created); default: {DEMO_OUTPUT} "
                          "for the demo, else null")
    run.add_argument("--config", help="pipeline YAML path or bundled name (live-camera, recorded-drive, benchmark)")
    _add_weights_or_model(run, required=False, model_help="a shipped model (colormamba-lite), or a model config "
                                                         "name or YAML (run untrained: for timing only)")
    run.add_argument("--side-by-side", action="store_true", help="write NIR | RGB side by side")
    run.add_argument("-y", "--overwrite", action="store_true",
                     help="replace output files that exist (without it a run refuses to start rather than destroy one)")
    _add_overrides(run, "engine.tile=384")
    run.add_argument("--max-frames", type=_non_negative, help="stop after N frames per input")
    run.add_argument("--resize", metavar="WxH",
                     help="scale every frame to WxH before colorizing (images of mixed sizes into one video)")
    run.add_argument("--summary-json", type=Path, help="write the run summary (fps, drops, latency) as JSON")
    run.add_argument("--realtime", action="store_true",
                     help="replay a bag or video at its recorded rate, as a live camera (frames drop if the "
                          "colorizer falls behind, and the summary counts them)")
    bags = run.add_argument_group("recorded drives", "a bag in, a bag out: the colorized topic beside the drive's "
                                                     "other sensors, with the input's stamps and frame_id")
    bags.add_argument("--topic", help="the bag's camera topic (default: its only image topic)")
    bags.add_argument("--out-topic", help="the colorized topic in a bag sink (default: <input topic>/colorized)")
    bags.add_argument("--no-copy-topics", action="store_true",
                      help="leave the input bag's other topics out of a bag sink (default: copy them unchanged)")
    cluster = run.add_argument_group(
        "cluster", "colorize a batch of files on a Ray cluster (pip install 'nirstream[ray]'): a worker per GPU, "
                   "or per --worker-threads CPU threads; inputs and outputs on storage every node sees")
    cluster.add_argument("--cluster", metavar="ADDRESS",
                         help="ray (RAY_ADDRESS if set, else a local Ray for this run) or ray://HOST:PORT")
    cluster.add_argument("--workers", type=_positive, help="workers in the pool (default: from the cluster's GPUs or CPUs)")
    cluster.add_argument("--worker-threads", type=_positive, metavar="N",
                         help="CPU threads per worker (default: 1, or the CPUs shared among --workers)")
    cluster.add_argument("--tries", type=_positive, default=3,
                         help="tries per file when its worker dies (default: 3)")
    run.set_defaults(handler=run_pipeline)


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = _command(commands, "train", "train a model on paired NIR/RGB images",
                     "Train a colorization model from a YAML config.")
    train.add_argument("--config", required=True, help="bundled name (colormamba-lite) or path to a train YAML")
    _add_overrides(train, "optim.lr=1e-4")
    train.add_argument("--resume", type=Path, help="continue exactly from a training checkpoint.pt")
    train.add_argument("--init", metavar="WEIGHTS",
                       help="start from a weights file or a shipped model's name (fine-tune, or continue a "
                            "shipped model with a new schedule); the same as --set run.init=WEIGHTS")
    train.set_defaults(handler=run_train)


def _add_eval(commands: argparse._SubParsersAction) -> None:
    evaluate = _command(
        commands, "eval", "score weights on paired data (PSNR, SSIM, AE, colourfulness)",
        "Colorize each NIR image of a paired set and score it against its RGB image with the VCIP "
        "2020 protocol (8-bit output vs 8-bit ground truth).",
    )
    _add_weights_or_model(evaluate, required=True, model_help="a shipped model, e.g. colormamba-lite")
    data = evaluate.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", type=Path, help="dataset root with <split>/nir and <split>/rgb, or a CSV of pairs")
    data.add_argument("--config", help="a train config (bundled name or YAML): score every validation set it "
                                       "names, as its training did (data.root's val split and data.more_val)")
    data.add_argument("--video", type=Path, help="a NIR video: its colour flicker (CDC) as nirstream run colorizes "
                                                 "it, and with --truth its error against the true colours")
    evaluate.add_argument("--test", action="store_true", help="with --config: score its fixed test split "
                          "(data.test) instead of its validation sets; report it once per released file")
    evaluate.add_argument("--truth", type=Path, help="with --video: the ground-truth RGB video, frame for frame "
                                                     "(tools/make_flicker_clips.py makes such pairs)")
    _add_overrides(evaluate, "data.root=PATH (with --config), engine.temporal.enabled=false (with --video)")
    evaluate.add_argument("--split", default="val",
                          help="split folder or CSV split value; none for <data>/nir and <data>/rgb (default: val)")
    evaluate.add_argument("--only", help="comma-separated pair names: score just these (a held-out part)")
    evaluate.add_argument("--out", type=Path, help="folder for metrics.json and contact_sheet.png "
                          "(default: runs/eval/<weights>-<split>, numbered -2, -3... when taken)")
    evaluate.add_argument("-y", "--overwrite", action="store_true",
                          help="replace the report in an --out folder that holds one (without it eval refuses)")
    evaluate.add_argument("--sheet-rows", type=_non_negative, default=8,
                          help="images on the contact sheet, 0 for none (default: 8)")
    evaluate.add_argument("--fid-weights", type=Path,
                          help="a local TorchScript Inception-v3 feature extractor (inception-2015-12-05.pt) "
                               "to add FID; without it the report says FID is not available")
    _add_device(evaluate)
    evaluate.set_defaults(handler=run_eval)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = _command(commands, "bench", "measure fps, latency and GPU memory of the colorizer",
                     "Benchmark every combination of --model, --backend, --precision and --size on "
                     "synthetic frames held in host memory.")
    bench.add_argument("--model", dest="models", action="append", metavar="MODEL",
                       help="shipped model, model config or .safetensors file (repeatable; "
                            "default: the shipped model for the device)")
    bench.add_argument("--backend", dest="backends", action="append", choices=get_args(Backend),
                       help="repeatable (default: eager)")
    bench.add_argument("--precision", dest="precisions", action="append", choices=get_args(Precision),
                       help="repeatable (default: fp32)")
    bench.add_argument("--size", dest="sizes", action="append", type=_size, metavar="WxH",
                       help="frame size, repeatable (default: 640x512, 1280x720 and 1920x1080)")
    bench.add_argument("--frames", type=_positive, default=100, help="timed frames per configuration (default: 100)")
    bench.add_argument("--source", help="time a recorded input's frames (a bag, video or image folder: its first "
                                        "--frames frames, decoded beforehand, at its size) instead of synthetic ones")
    bench.add_argument("--topic", help="with --source: the bag's camera topic")
    _add_device(bench)
    _add_overrides(bench, "engine.tile_batch=auto")
    bench.add_argument("--out", type=Path, default=Path("runs") / "bench",
                       help="folder for bench.json and bench.png (default: runs/bench)")
    bench.set_defaults(handler=run_bench)


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = _command(commands, "export", "export a model to ONNX or TensorRT",
                      "Export a model for a fixed input size: ONNX (checked with onnxruntime) or a "
                      "TensorRT program.")
    _add_weights_or_model(export, required=False, model_help="a shipped model (default: the shipped model for the CPU)")
    export.add_argument("--format", required=True, choices=("onnx", "tensorrt"), help="the file to write")
    export.add_argument("--out", required=True, type=Path, help="output file (.onnx, or .ep for TensorRT)")
    export.add_argument("--size", type=_size, default=(640, 512), metavar="WxH",
                        help="input width x height (default: 640x512)")
    export.add_argument("--batch", type=_positive, default=1, help="input batch size (default: 1)")
    export.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"), help="TensorRT only")
    export.add_argument("--check-source", help="video or images to check the ONNX file on (default: the demo clip)")
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    export.set_defaults(handler=run_export)


def _add_cameras(commands: argparse._SubParsersAction) -> None:
    cameras = _command(commands, "cameras", "list the V4L2 cameras and their pixel formats",
                       "List the cameras this machine has (V4L2 devices): the --source name to use, "
                       "the device, the pixel formats it offers (GREY and Y16 are NIR) and its name.")
    cameras.set_defaults(handler=run_cameras)


def run_cameras(args: argparse.Namespace) -> None:
    from nirstream.stream.sources.camera_list import camera_table, list_cameras

    print(camera_table(list_cameras()))


def run_pipeline(args: argparse.Namespace) -> int:
    from nirstream.core.errors import ConfigError
    from nirstream.stream.config import load_run_config
    from nirstream.stream.run import run

    config = load_run_config(args.config, args.overrides)
    if args.weights:
        config.weights = str(args.weights)
    if args.model:
        config.model = args.model
    if args.side_by_side:
        config.sink.side_by_side = True
    if args.overwrite:
        config.sink.overwrite = True
    if args.max_frames is not None:
        config.max_frames = args.max_frames
    if args.resize is not None:
        config.resize = args.resize
    if args.topic is not None:
        config.topic = args.topic
    if args.realtime:
        config.realtime = True
    if args.out_topic is not None:
        config.sink.out_topic = args.out_topic
    if args.no_copy_topics:
        config.sink.copy_topics = False
    source, sinks = args.source, args.sinks
    if source is None:
        from nirstream.core.assets import demo_clip

        source = str(demo_clip())
        sinks = sinks or [_free_name(Path(DEMO_OUTPUT))]
        logger.info(f"no --source: colorizing the bundled demo clip {source}")
    bars = _terminal_columns() > 0 and not args.log_json
    if args.cluster is not None:
        from nirstream.stream.cluster import ClusterConfig, run_on_cluster

        cluster = ClusterConfig(args.cluster, args.workers, args.worker_threads, args.tries)
        _, batch = run_on_cluster(source, sinks or [], config, cluster, summary_json=args.summary_json,
                                  bars=bars, debug=args.debug, log_json=args.log_json)
        return 130 if batch.interrupted else 0
    if args.workers or args.worker_threads:
        raise ConfigError("--workers and --worker-threads size a --cluster pool: add --cluster ray")
    summaries = run(source, sinks or [], config, summary_json=args.summary_json, bars=bars)
    if any(summary.interrupted for summary in summaries):
        return 130  # stopped by SIGINT/SIGTERM or a window's q: outputs are complete up to that frame
    return 0


def run_train(args: argparse.Namespace) -> None:
    from nirstream.core.train import load_train_config, train

    overrides = [*args.overrides, *([f"run.init={args.init}"] if args.init else [])]
    config = load_train_config(args.config, overrides)
    run_dir = train(config, resume=args.resume)
    logger.info(f"run folder: {run_dir}")


def run_eval(args: argparse.Namespace) -> None:
    from nirstream.core.data import CsvPairedDataset, PairedFolderDataset
    from nirstream.core.errors import ConfigError
    from nirstream.core.device import resolve_device
    from nirstream.core.evaluate import contact_sheet, evaluate, write_report
    from nirstream.core.models import create_model
    from nirstream.core.train import load_train_config
    from nirstream.core.train.datasets import test_sets, validation_sets

    if args.test and args.config is None:
        raise ConfigError("--test scores a train config's test split: give it with --config")
    device = resolve_device(args.device)
    model = create_model(args.weights or args.model, device=device)
    label = Path(args.weights).stem if args.weights else args.model
    if args.video is not None:
        from nirstream.stream.config import load_run_config
        from nirstream.stream.video_eval import evaluate_video

        engine = load_run_config(None, args.overrides).engine
        engine.device = args.device
        print(evaluate_video(model, args.video, args.truth, engine).table())
        return
    split = None if args.split.lower() == "none" else args.split
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    if args.config is not None:
        data = load_train_config(args.config, args.overrides).data
        if args.test:
            sets = test_sets(data)
            if not sets:
                raise ConfigError(f"train config {args.config} names no test split (data.test)")
        else:
            sets = [(name or "val", dataset) for name, dataset, _ in validation_sets(data)]
    elif args.data.suffix.lower() == ".csv":
        sets = [(args.split, CsvPairedDataset(args.data, split=split, only=only))]
    else:
        sets = [(args.split, PairedFolderDataset(args.data, split, only=only))]
    base = _eval_folder(args.out, Path("runs") / "eval" / (label if len(sets) > 1 else f"{label}-{sets[0][0]}"),
                        args.overwrite)
    for name, dataset in sets:
        report = evaluate(model, dataset, device, keep_images=args.sheet_rows, fid_weights=args.fid_weights)
        if len(sets) > 1:
            print(f"\n{name}:")
        print(report.table())
        out = base / name if len(sets) > 1 else base
        logger.info(f"metrics: {write_report(report, out / 'metrics.json')}")
        if args.sheet_rows > 0:
            logger.info(f"contact sheet: {contact_sheet(report, out / 'contact_sheet.png')}")


def _eval_folder(out: Path | None, default: Path, overwrite: bool) -> Path:
    """Where an evaluation's report goes, never over an earlier one unasked: the default folder
    takes the next free number (``best-val-2``...); a given ``--out`` that holds a report is
    refused without ``--overwrite``."""
    from nirstream.core.errors import ConfigError

    if out is None:
        return free_path(default)
    if not overwrite and out.exists() and any(out.rglob("metrics.json")):
        raise ConfigError(f"{out} holds an earlier evaluation: pass --overwrite (or -y) to replace it, or choose another --out")
    return out


def run_bench(args: argparse.Namespace) -> None:
    from nirstream.core.errors import ConfigError
    from nirstream.core.models import create_model, default_name
    from nirstream.stream.bench import RESOLUTIONS, bench_matrix, table, write_chart, write_json
    from nirstream.stream.config import load_run_config

    config = load_run_config(None, [f"engine.device={args.device}", *args.overrides])
    pool = None
    if args.source is not None:
        from nirstream.stream.bench import recorded_frames
        from nirstream.stream.run import open_inputs

        config.topic = args.topic
        _, (source, *others), _ = open_inputs(args.source, [], config)
        for other in others:
            other.close()
        pool = recorded_frames(source, args.frames)
    elif args.topic is not None:
        raise ConfigError("--topic chooses the camera topic of a bag given with --source")
    models = {}
    for spec in args.models or [default_name(args.device)]:
        name = Path(spec).stem if spec.endswith(".safetensors") else spec
        models[name] = create_model(spec, untrained=True)
    results = bench_matrix(
        models, config.engine, args.backends or ["eager"], args.precisions or ["fp32"],
        args.sizes or list(RESOLUTIONS), args.frames, pool,
    )
    print(table(results))
    logger.info(f"results: {write_json(results, args.out / 'bench.json')}")
    logger.info(f"chart: {write_chart(results, args.out / 'bench.png')}")


def run_export(args: argparse.Namespace) -> None:
    from nirstream.core.assets import demo_clip
    from nirstream.core.models import create_model, default_name
    from nirstream.stream.export import export

    spec = str(args.weights or args.model or default_name("cpu"))
    model = create_model(spec)
    width, height = args.size
    check = None if args.no_check else (args.check_source or str(demo_clip()))
    out = export(model, args.format, args.out, width, height, batch=args.batch, precision=args.precision,
                 check_source=check)
    logger.info(f"exported {Path(spec).name} as {args.format}: {out.resolve()}")


def configure_logging(debug: bool, as_json: bool) -> None:
    """nirstream's log on stderr, one JSON object per line with ``as_json``; OpenCV's own log
    (its ``[ WARN:...]`` lines before nirstream's one-line errors) only with ``debug``."""
    logger.remove()
    fmt = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"
    if sys.stderr.isatty() and not as_json:  # through tqdm, so that a line never breaks a progress bar
        from tqdm import tqdm

        logger.add(lambda line: tqdm.write(line, end="", file=sys.stderr), level="DEBUG" if debug else "INFO",
                   format=fmt, colorize=True)
    else:
        logger.add(sys.stderr, level="DEBUG" if debug else "INFO", serialize=as_json, format=fmt, colorize=False)
    from cv2.utils import logging as opencv_logging

    opencv_logging.setLogLevel(opencv_logging.LOG_LEVEL_WARNING if debug else opencv_logging.LOG_LEVEL_ERROR)


FRAME_COMMANDS = {"run", "eval", "bench"}
"""Commands that run a model over frame after frame, the same buffers each time: malloc is tuned
for them (``stream/allocator.py``). Training was measured no faster tuned, so it is left alone."""


def main(argv: list[str] | None = None) -> int:
    _Parser.json_errors = "--log-json" in (sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    configure_logging(args.debug, args.log_json)
    from nirstream.core.errors import NirstreamError, one_line
    from nirstream.stream.allocator import keep_freed_memory

    if args.command in FRAME_COMMANDS:
        keep_freed_memory()

    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 130)
    except (NirstreamError, OSError) as exc:  # bad input: one line, and the traceback with --debug
        if args.debug:
            traceback.print_exc()
        return _fail(args, f"error: {one_line(exc, with_file=True)}", 2 if isinstance(exc, NirstreamError) else 1)
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        return _fail(args, f"internal error: {type(exc).__name__}: {one_line(exc, with_file=True)} "
                           "(run again with --debug for the traceback)", 1)
    return code or 0


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """The line that ends a failed command, on stderr: ``nirstream: <message>``, or with
    ``--log-json`` a JSON object like every other line (level, message, exit code)."""
    if args.log_json:
        import json

        print(json.dumps({"level": "ERROR", "message": message, "exit_code": code, "command": args.command}),
              file=sys.stderr)
    else:
        print(f"nirstream: {message}", file=sys.stderr)
    return code


def _terminal_columns() -> int:
    """The width of the terminal stderr is, 0 when it is not one or reports no width (some CI
    and IDE terminals): progress bars need a width, and without one the log lines show progress."""
    if not sys.stderr.isatty():
        return 0
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 0


def _free_name(path: Path) -> str:
    """The demo's output name: never an earlier result's (``nirstream-demo-2.mp4``... when taken)."""
    return str(free_path(path))


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"size must look like 640x512 (width x height), got {text!r}")
    return int(width), int(height)


if __name__ == "__main__":
    sys.exit(main())
