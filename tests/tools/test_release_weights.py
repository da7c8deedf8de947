"""tools/release_weights.py: a run's best epoch becomes a shipped file with its scores, and a
shipped file is scored again in place when the code that runs it changes."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from nirstream.core.train import train
from nirstream.core.weights import load_model, read_metadata, save_weights

from conftest import REPOSITORY
from pairs import make_config, write_pairs

TOOL = str(REPOSITORY / "tools" / "release_weights.py")


@pytest.mark.slow
def test_release_then_rescore_in_place(tmp_path):
    write_pairs(tmp_path / "pairs", "train", [(f"t{i}", i) for i in range(4)])
    write_pairs(tmp_path / "pairs", "val", [("v0", 10), ("v1", 11)])
    run_dir = train(make_config(tmp_path / "pairs", tmp_path / "runs", "tiny", "optim.epochs=1"))
    released = tmp_path / "weights" / "tiny.safetensors"
    subprocess.run([sys.executable, TOOL, str(run_dir), "--name", "tiny", "--command", "nirstream train x",
                    "--machine", "a test", "--out", str(released.parent)], check=True, capture_output=True)
    info = read_metadata(released)["info"]
    assert info["command"] == "nirstream train x" and info["eval_sets"]["val"]["images"] == 2
    true_psnr, tensors = info["eval_sets"]["val"]["psnr"], load_file(released)

    # a file whose recorded scores no longer match what the code computes: scored again in place
    stale = tmp_path / "stale.safetensors"
    info["eval_sets"]["val"]["psnr"], info["fingerprint"]["mean"] = 0.0, [0.0, 0.0, 0.0]
    save_weights(load_model(released), stale, info=info, dtype=torch.float16)
    done = subprocess.run([sys.executable, TOOL, "--rescore", str(stale), "--why", "padding changed"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = read_metadata(stale)["info"]
    assert again["eval_sets"]["val"]["psnr"] == true_psnr and again["fingerprint"]["mean"] != [0.0, 0.0, 0.0]
    assert [r["why"] for r in again["rescored"]] == ["padding changed"] and again["command"] == "nirstream train x"
    kept = load_file(stale)
    assert kept.keys() == tensors.keys() and all(torch.equal(kept[k], tensors[k]) for k in tensors)

    for wrong in (["--rescore", str(stale)], ["--rescore", str(stale), "--why", "x", str(run_dir)],
                  [str(run_dir), "--name", "tiny", "--machine", "a test"]):
        refused = subprocess.run([sys.executable, TOOL, *wrong], capture_output=True, text=True)
        assert refused.returncode == 2 and "--why" in refused.stderr, wrong
