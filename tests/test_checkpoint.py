"""A checkpoint is one unit: a damaged one costs one line and the run starts again from epoch 1;
a full disk while one is written leaves the one before it whole, train.py says so in one line,
and the next train.py resumes from it."""
import json

import pytest

from conftest import ROOT, TINY_DEMO_ARGS, run_train
from labcore.train.training import train_run


@pytest.mark.parametrize("damaged", ["variables.npz", "best.weights.npz", "state.json"])
def test_a_checkpoint_cut_short_is_one_line_and_the_run_starts_again_from_epoch_1(start_and_kill, tmp_path,
                                                                                  damaged):
    spec, settings, source = start_and_kill("segmentation-scratch", tmp_path)
    unit = tmp_path / ".partial" / spec.run_id / "backup" / "epoch-0002"
    cut = unit / damaged
    cut.write_bytes(cut.read_bytes()[:cut.stat().st_size // 2])  # a kill in the middle of writing it, by hand

    messages = []
    path = train_run(spec, settings, source, tmp_path, messages.append)
    said = [m for m in messages if "checkpoint" in m]
    assert len(said) == 1 and "\n" not in said[0], said
    assert said[0].startswith(f"[segmentation-scratch] its checkpoint {unit} cannot be read (")
    assert said[0].endswith("); it starts again from epoch 1")
    assert not any("resuming" in m for m in messages)
    assert [m.split()[2] for m in messages if m.startswith("[segmentation-scratch] epoch ")] == [
        "1/4", "2/4", "3/4", "4/4"]
    history = json.loads((path / "history.json").read_text())
    assert {len(values) for values in history.values()} == {4}  # the two epochs before the kill are not kept


# train.py with every epoch's checkpoint due (a fake clock, 100 s per look) and the disk full
# from the third one on: a file-size limit (no root needed), SIGXFSZ ignored so that a write
# past it fails with EFBIG, as a write to a full disk fails with ENOSPC.
FULL_DISK = """
import itertools, resource, runpy, signal, sys
from labcore.train import checkpoint

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
ticks = itertools.count()
checkpoint.Checkpoint.clock = staticmethod(lambda: 100.0 * next(ticks))
save = checkpoint.Checkpoint.save

def save_on_a_full_disk(self, epoch):
    if epoch == 2:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
    return save(self, epoch)

checkpoint.Checkpoint.save = save_on_a_full_disk
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_full_disk_while_a_checkpoint_is_written_keeps_the_last_one_and_train_py_resumes(tmp_path):
    import subprocess
    import sys

    args = [*TINY_DEMO_ARGS, "--epochs", "4", "--only", "segmentation-scratch", "--jobs", "1"]
    full = subprocess.run([sys.executable, "-c", FULL_DISK, *args, "--runs-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    backup = tmp_path / "demo" / ".partial" / "segmentation-scratch" / "backup"
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert full.stderr.strip().splitlines()[-1] == (
        f"train.py: cannot write the checkpoint (File too large) ({backup / 'epoch-0003.tmp'}); fix that and run "
        "again: an unfinished run resumes from its last checkpoint")
    assert [p.name for p in backup.iterdir()] == ["epoch-0002"]  # whole; the half-written one is gone

    again = run_train(args, tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[segmentation-scratch] resuming after epoch 2" in again.stdout
    history = json.loads((tmp_path / "demo" / "segmentation-scratch" / "history.json").read_text())
    assert {len(values) for values in history.values()} == {4}
