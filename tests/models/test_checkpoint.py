import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import safe_open, save_file

from models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from models.errors import CheckpointError
from models.model import CharRNN, ModelConfig
from models.vocab import Vocab
from tests.helpers import ROOT


def make_checkpoint(seed=0, step=7) -> Checkpoint:
    torch.manual_seed(seed)
    vocab = Vocab.from_text("hello world\n")
    config = ModelConfig(vocab_size=len(vocab), cell="gru", layers=2, hidden=8, embedding=4)
    return Checkpoint(config, vocab, CharRNN(config).state_dict(), "greeting.txt", step,
                      {"val_loss": 1.5}, {"val_fraction": 0.2})


def test_round_trip(tmp_path):
    ckpt = make_checkpoint()
    path = save_checkpoint(ckpt, tmp_path / "best.safetensors")
    loaded = load_checkpoint(tmp_path)  # a directory means its best checkpoint
    assert loaded.path == path
    assert (loaded.config, loaded.vocab, loaded.corpus, loaded.step) == (ckpt.config, ckpt.vocab, "greeting.txt", 7)
    assert loaded.metrics == {"val_loss": 1.5} and loaded.extra == {"val_fraction": 0.2}
    for name, tensor in ckpt.state_dict.items():
        assert torch.equal(loaded.state_dict[name], tensor)
    sidecar = json.loads((tmp_path / "best.json").read_text())
    assert sidecar["config"]["cell"] == "gru" and sidecar["step"] == 7
    assert load_checkpoint(tmp_path / "best.json").step == 7


def test_weights_file_has_no_pickle(tmp_path):
    path = save_checkpoint(make_checkpoint(), tmp_path / "a.safetensors")
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert json.loads(header["__metadata__"]["format"]) == "rnnbot-checkpoint"


def test_kill_during_write_leaves_previous_checkpoint_intact(tmp_path):
    """A process SIGKILLed halfway through writing the new file: the old one still loads."""
    target = tmp_path / "last.safetensors"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import models.checkpoint as cp
        from tests.models.test_checkpoint import make_checkpoint
        cp.save_checkpoint(make_checkpoint(seed=0, step=1), cp.Path({str(target)!r}))
        real = cp._write_weights
        def dying_write(tmp, tensors, header):
            real(tmp, tensors, header)
            with open(tmp, "r+b") as f:          # half the new file is on disk...
                f.truncate(os.path.getsize(tmp) // 2)
            os.kill(os.getpid(), signal.SIGKILL)  # ...when the process dies
        cp._write_weights = dying_write
        cp.save_checkpoint(make_checkpoint(seed=1, step=2), cp.Path({str(target)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    loaded = load_checkpoint(target)
    assert loaded.step == 1
    for name, tensor in make_checkpoint(seed=0).state_dict.items():
        assert torch.equal(loaded.state_dict[name], tensor)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1  # the dead process's temp file, never renamed into place


def test_foreign_corrupt_and_missing_files(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an rnnbot checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 3 + b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no best.safetensors or last.safetensors"):
        load_checkpoint(tmp_path)


def test_truncated_and_mismatched_checkpoints(tmp_path):
    good = save_checkpoint(make_checkpoint(), tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(cut)
    ckpt = make_checkpoint()
    ckpt.state_dict = {k: v for k, v in ckpt.state_dict.items() if not k.startswith("head")}
    save_checkpoint(ckpt, tmp_path / "partial.safetensors")
    with pytest.raises(CheckpointError, match="corrupt rnnbot checkpoint"):
        load_checkpoint(tmp_path / "partial.safetensors")


def rewrite_header(source, target, **changes):
    """`source`'s tensors with its header changed: a value of None drops the key, a str is stored raw."""
    with safe_open(str(source), framework="pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no dict
    for key, value in changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value if isinstance(value, str) else json.dumps(value)
    save_file(tensors, str(target), metadata=header)
    return target


@pytest.mark.parametrize("changes, message", [
    ({"format": "pt"}, "not an rnnbot checkpoint"),  # safetensors' own convention: a bare string
    ({"config": "{not json"}, "its config is not JSON"),
    ({"config": {"vocab_size": 10, "cell": "gru", "layers": 2, "hidden": 10**6, "embedding": 4}},
     "hidden=1000000"),
    ({"config": {"vocab_size": 10, "cell": "gru", "layers": 2, "hidden": 8.5, "embedding": 4}}, "hidden"),
    ({"vocab": ["\ufffd", 7]}, "vocab"),
    ({"metrics": [1, 2]}, "metrics"),
    ({"step": "\"soon\""}, "step"),
])
def test_a_header_that_does_not_match_its_tensors_is_refused_before_anything_is_built(tmp_path, changes, message):
    good = save_checkpoint(make_checkpoint(), tmp_path / "good.safetensors")
    bad = rewrite_header(good, tmp_path / "bad.safetensors", **changes)
    # hidden=10**6 would be 16 TB of LSTM weights: the shapes are compared with the file first.
    with pytest.raises(CheckpointError, match=message) as refused:
        load_checkpoint(bad)
    assert "\n" not in str(refused.value) and "bad.safetensors" in str(refused.value)
