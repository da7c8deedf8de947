"""Training samples per second: an earlier trainer against this one, side by side, alternated.

Each variant trains for real, in its own process, through ``nirstream train`` on the VCIP pairs
(the same model, loss, crops and batch of 8; VCIP only, so the data is the same; the model is
the baseline's ``colormamba-lite``, 24/12 wide, in every variant): two short
epochs of ``--steps`` steps, and the rate is read from the second epoch's step log, when every
pair is cached and the allocator is warm. The variants run in turn, ``--rounds`` times, so a
change in the machine's load touches all of them alike; the table gives each one's median.

- ``old``: the trainer at ``--baseline`` (a git revision; checked out into a temporary worktree)
  with its own bundled config: one process, torch's default threads, 2 loader workers.
- ``new``: this tree, one process with 2 threads, pairs cached, loading in the process.
- ``new-ddp``: this tree, two processes of one thread each (``torchrun``, gloo), batch 4 each,
  the same 8 crops per step.

The FLOP rate is the model's training FLOPs (forward counted on the meta device, backward taken
as twice the forward, as is usual) over the wall time, held against a square fp32 matmul
measured here: the fraction of the CPU's matrix rate the trainer reaches.

    python benchmarks/train_speed.py [--baseline fc9e91e] [--steps 40] [--rounds 2]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from nirstream.core.models import build_model, load_model_config
from nirstream.core.models.cost import forward_flops
from nirstream.stream.bench import measure_peak_tflops

from results import update_section

REPO = Path(__file__).resolve().parent.parent
CROP, BATCH = 200, 8
VCIP_ONLY = ["data.more_train=[]", "data.more_val=[]"]
STEP_LOG = re.compile(r"epoch 2 step (\d+)/\d+: .* \| ([\d.]+) s/step")


def package_shim(tree: Path, where: Path) -> Path:
    """A folder that imports ``nirstream`` from ``tree`` (the layout pyproject's package-dir maps)."""
    package = where / "nirstream"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for part in ("core", "stream", "configs", "assets"):
        (package / part).symlink_to(tree / part)
    return where


def variants(baseline_shim: Path, current_shim: Path) -> dict[str, tuple[list[str], dict[str, str], list[str]]]:
    """name -> (command prefix, environment, extra overrides)."""
    cli = [sys.executable, "-c", "import sys; from nirstream.stream.cli import main; sys.exit(main())"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    ddp = [*launch, "--no-python", *cli]
    return {
        "old": (cli, {"PYTHONPATH": str(baseline_shim)}, []),
        "new": (cli, {"PYTHONPATH": str(current_shim)}, VCIP_ONLY),
        "new-ddp": (ddp, {"PYTHONPATH": str(current_shim), "OMP_NUM_THREADS": "1"}, [*VCIP_ONLY, "data.batch_size=4"]),
    }


def samples_per_second(
    command: list[str], env: dict[str, str], overrides: list[str], steps: int, out: Path, model: Path
) -> float:
    """Train two epochs of ``steps`` steps; the second epoch's rate from its step log."""
    sets = [
        f"model={model}", "optim.epochs=2", f"run.max_steps_per_epoch={steps}", "run.log_every=10",
        f"run.out_dir={out}", "run.name=speed", "run.checkpoint_every=100", *overrides,
    ]
    args = [*command, "train", "--config", "colormamba-lite", *(x for s in sets for x in ("--set", s))]
    result = subprocess.run(args, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    logs = {int(m[1]): float(m[2]) for m in STEP_LOG.finditer(result.stderr + result.stdout)}
    first, last = min(logs), max(logs)
    seconds_per_step = (last * logs[last] - first * logs[first]) / (last - first)
    world = 2 if "torch.distributed.run" in command else 1
    batch = 4 if world == 2 else BATCH
    return world * batch / seconds_per_step


def profile_step(model_config: dict, threads: int, steps: int = 3) -> str:
    """Where one training step of this tree's trainer spends its time: torch.profiler's top
    operators (self CPU time per step), on a synthetic batch of 8 crops, as a Markdown table."""
    from torch.profiler import ProfilerActivity, profile

    from nirstream.core.losses import build_loss
    from nirstream.core.train import load_train_config

    torch.set_num_threads(threads)
    model = build_model(model_config)
    loss = build_loss(load_train_config("colormamba-lite").loss)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    nir, rgb = torch.rand(BATCH, 1, CROP, CROP), torch.rand(BATCH, 3, CROP, CROP)

    def step() -> None:
        total, _ = loss(model.forward_with_aux(nir), rgb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = ["| operator | ms per step (self) | share |", "|---|---:|---:|"]
    for event in events[:12]:
        rows.append(f"| `{event.key}` | {event.self_cpu_time_total / steps / 1e3:.1f} | {event.self_cpu_time_total / total:.0%} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="fc9e91e", help="git revision of the earlier trainer")
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch (the second epoch is timed)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="+", help="variants to run (default: all)")
    parser.add_argument("--profile-threads", type=int, default=2, help="threads for the profile of one step")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        worktree = temp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline], cwd=REPO, check=True,
                       capture_output=True)
        try:
            model_path = worktree / "configs" / "models" / "colormamba-lite.yaml"
            model_config = load_model_config(model_path)
            table = variants(package_shim(worktree, temp / "old"), package_shim(REPO, temp / "new"))
            names = args.only or list(table)
            rates: dict[str, list[float]] = {name: [] for name in names}
            for round_ in range(args.rounds):
                for name in names:
                    rate = samples_per_second(*table[name], args.steps, temp / f"runs-{name}-{round_}", model_path)
                    rates[name].append(rate)
                    print(f"round {round_ + 1} {name}: {rate:.1f} samples/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)

    model = build_model(model_config)
    counted, scan = forward_flops(model, CROP, CROP, batch=1)
    flops_per_sample = 3 * (counted + scan)
    torch.set_num_threads(2)
    peak = measure_peak_tflops(torch.device("cpu"), "fp32") * 1e12
    base = statistics.median(rates[names[0]])
    lines = [
        f"Training FLOPs per {CROP}² crop: {flops_per_sample / 1e9:.2f} G (3x the forward); "
        f"fp32 matmul rate measured here: {peak / 1e9:.0f} GFLOP/s (2 threads).",
        "",
        "| trainer | samples/s (median) | rounds | vs " + names[0] + " | fraction of the matmul rate |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        median = statistics.median(rates[name])
        runs = ", ".join(f"{r:.1f}" for r in rates[name])
        lines.append(
            f"| {name} | {median:.1f} | {runs} | {median / base:.2f}x | {median * flops_per_sample / peak:.1%} |"
        )
    lines += [
        "",
        f"Where a step of `new` goes (torch.profiler, self CPU time, {args.profile_threads} threads, synthetic batch):",
        "",
        profile_step(model_config, args.profile_threads),
    ]
    body = f"Baseline {args.baseline}; load average at the end {os.getloadavg()[0]:.2f}.\n\n" + "\n".join(lines)
    print(body)
    update_section("train_speed", "Training speed (benchmarks/train_speed.py)", body)


if __name__ == "__main__":
    main()
