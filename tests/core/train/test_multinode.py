"""Training across machines: the documented ``torchrun`` two-node command, with the two nodes
simulated as two launchers on this host (gloo), each in its own working folder, and the data
and run folder on storage both see."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nirstream.core.config import to_dict

from pairs import make_config, write_pairs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_torchrun_on_two_nodes_trains_one_run_on_shared_storage(tmp_path):
    nirstream = Path(sys.executable).with_name("nirstream")
    if not nirstream.exists():
        pytest.skip("the nirstream console script is not installed beside this Python")
    shared = tmp_path / "shared"  # what both nodes mount
    write_pairs(shared / "data", "train", [(f"pair{i}", i) for i in range(6)])
    write_pairs(shared / "data", "val", [(f"val{i}", 10 + i) for i in range(2)])
    config = make_config(shared / "data", shared / "runs", "two-nodes", "optim.epochs=1")
    recipe = shared / "two-nodes.yaml"
    recipe.write_text(yaml.safe_dump(to_dict(config)))
    port = _free_port()
    launchers = []
    for node in (0, 1):  # the command each machine runs, only --node-rank differs
        workdir = tmp_path / f"node{node}"
        workdir.mkdir()
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}", "--nproc-per-node=1",
            "--master-addr=127.0.0.1", f"--master-port={port}",
            "--no-python", str(nirstream), "train", "--config", str(recipe),
        ]
        launchers.append(subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}))
    logs = [launcher.communicate(timeout=400)[0] for launcher in launchers]
    assert [launcher.returncode for launcher in launchers] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert "2 processes" in logs[0] and "epoch 1/1" in logs[0]  # rank 0 logs the run it leads
    assert "epoch 1/1" not in logs[1]  # the other node trains silently
    run = shared / "runs" / "two-nodes"
    assert (run / "best.safetensors").exists() and (run / "checkpoint.pt").exists()
    assert sorted(p.name for p in (shared / "runs").iterdir()) == ["two-nodes"]  # one run folder, not one per node
