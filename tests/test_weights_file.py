"""Weights this project writes itself (the pretext backbones, the checkpoints' arrays) round-trip,
are checked before a model takes them, and a full disk while they are written is one OSError:
no segmentation fault, nothing left behind, and train.py says so in one line."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TINY_DEMO_ARGS, run_train
from labcore.model.architectures import build_backbone
from labcore.model.pretext import pretext_path
from labcore.model.weights_file import load_weights, read_arrays, save_weights
from labcore.settings import PROFILES

# Python ignores SIGXFSZ, so a write past a file-size limit fails with EFBIG, as a write to a
# full disk fails with ENOSPC; no root needed.
WRITE_PAST_A_LIMIT = """
import resource, sys
import numpy as np
from labcore.model.weights_file import write_arrays
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
try:
    write_arrays(sys.argv[1], [np.ones((200, 200), np.float32), np.zeros(10)])
except OSError as err:
    print(err.errno, err.strerror, err.filename)
"""


def test_weights_round_trip_into_a_new_model_and_leave_only_their_file(tmp_path):
    source = build_backbone("tiny", 32)
    path = tmp_path / "tiny.weights.npz"
    save_weights(source, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    loaded = build_backbone("tiny", 32, weights=str(path))
    fresh = build_backbone("tiny", 32)
    for mine, theirs, other in zip(loaded.weights, source.weights, fresh.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(fresh.weights, source.weights))
    assert [a.shape for a in read_arrays(path)] == [tuple(w.shape) for w in source.weights]


def test_weights_of_another_model_are_refused_before_any_is_assigned(tmp_path):
    path = tmp_path / "small.weights.npz"
    save_weights(build_backbone("tiny", 32), path)
    other = build_backbone("MobileNetV3Small", 32)
    before = [w.numpy().copy() for w in other.weights]
    with pytest.raises(ValueError, match="holds 10 arrays of other shapes"):
        load_weights(other, path)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(other.weights, before))


def test_a_full_disk_is_one_oserror_naming_the_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "big.weights.npz"
    done = subprocess.run([sys.executable, "-c", WRITE_PAST_A_LIMIT, str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]  # no crash after the failed write
    assert done.stdout.strip() == f"27 cannot write big.weights.npz (File too large) {target}"
    assert list(tmp_path.iterdir()) == []  # neither the file nor its half-written stand-in


# train.py making the pretext backbone on a disk that fills as its weights are written.
PRETEXT_ON_A_FULL_DISK = """
import resource, runpy, sys
from labcore.model import pretext

save = pretext.save_weights

def save_on_a_full_disk(model, path):
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))
    try:
        save(model, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

pretext.save_weights = save_on_a_full_disk
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_full_disk_while_the_pretext_backbone_is_written_is_one_line_and_train_py_goes_on_after(tmp_path):
    args = [*TINY_DEMO_ARGS, "--only", "detection-pretrained", "--jobs", "1"]
    full = subprocess.run([sys.executable, "-c", PRETEXT_ON_A_FULL_DISK, *args, "--runs-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    pretext = tmp_path / "demo" / ".pretext"
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    made = pretext_path("tiny", PROFILES["demo"].with_overrides(image_size=32), pretext)
    assert full.stderr.strip().splitlines()[-1] == (
        f"train.py: cannot write {made.name} (File too large) ({made}); fix that and run again: an unfinished "
        "run resumes from its last checkpoint")
    assert list(pretext.iterdir()) == []  # no half-written weights for the next run to trust

    again = run_train(args, tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert list(pretext.iterdir()) == [made]
    assert (tmp_path / "demo" / "detection-pretrained" / "model.keras").is_file()


@pytest.mark.parametrize("damage", [b"PK\x03\x04 cut short", b"\x93NUMPY not a zip"])
def test_a_damaged_pretext_file_costs_one_line_and_is_made_again(tiny_settings, tmp_path, damage):
    """A copied experiment's `.pretext/` file may be cut short or be something else: the run
    says so in one line and pretrains the backbone again, as if the file had not been there."""
    from labcore.model.pretext import pretext_backbone

    settings = tiny_settings.with_overrides(pretext_examples=64, pretext_epochs=1)
    path = pretext_path("tiny", settings, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    said = []
    backbone = pretext_backbone("tiny", settings, tmp_path, said.append)
    assert said[0] == f"[pretext] {path} cannot be read ({'BadZipFile' if damage[:2] == b'PK' else 'ValueError'}); " \
                      "pretraining it again"
    assert said[1].startswith("[pretext] pretraining tiny")
    for mine, stored in zip(backbone.weights, read_arrays(path)):
        np.testing.assert_array_equal(mine.numpy(), stored)
