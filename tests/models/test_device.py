"""Device choice: auto, cpu, cuda, cuda:N, and the errors for what this machine lacks."""

from __future__ import annotations

import pytest
import torch

from models.device import describe, resolve_device
from models.errors import RnnbotError

CUDA = torch.cuda.is_available()


def test_auto_is_the_cpu_without_a_gpu_and_cuda_with_one():
    assert resolve_device("auto") == (torch.device("cuda:0") if CUDA else torch.device("cpu"))
    assert resolve_device("") == resolve_device("auto")
    assert resolve_device(" CPU ") == torch.device("cpu") and describe(torch.device("cpu")) == "cpu"


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cuda0", "mps", "cpu:0"])
def test_malformed_devices_are_refused_in_one_line(spec):
    with pytest.raises(RnnbotError, match="is not one of auto") as refused:
        resolve_device(spec)
    assert "\n" not in str(refused.value)


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_asking_for_cuda_without_one_says_so(spec):
    with pytest.raises(RnnbotError, match="no CUDA GPU is available here.*use cpu or auto"):
        resolve_device(spec)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_gpu_index_beyond_the_machine_is_refused_and_a_real_one_is_named():
    count = torch.cuda.device_count()
    with pytest.raises(RnnbotError, match=f"this machine has {count} GPU"):
        resolve_device(f"cuda:{count}")
    device = resolve_device("cuda")
    assert device == torch.device("cuda", 0) and describe(device).startswith("cuda:0 (")


# ----- one checkpoint format: CPU tensors in every file, mapped onto the device in use -----

def test_resume_state_is_written_on_the_cpu_and_read_onto_the_chosen_device(tmp_path):
    from models.checkpoint import load_resume_state, save_resume_state

    state = {"model": {"w": torch.randn(3, 4, dtype=torch.bfloat16)}, "hidden": [torch.zeros(2, 5)],
             "rng": torch.get_rng_state(), "step": 7}
    path = tmp_path / "last.resume.pt"
    save_resume_state(state, path)
    raw = torch.load(path, weights_only=True)  # no map_location: tensors come back where they were saved
    assert raw["model"]["w"].device.type == "cpu" and raw["hidden"][0].device.type == "cpu"
    # "meta" stands in for a device this machine lacks: the tensors land on whatever is asked for
    elsewhere = load_resume_state(path, torch.device("meta"))
    assert elsewhere["model"]["w"].device.type == "meta" and elsewhere["hidden"][0].device.type == "meta"
    assert elsewhere["step"] == 7
    here = load_resume_state(path, resolve_device("auto"))
    assert torch.equal(here["model"]["w"].cpu(), state["model"]["w"])


def test_weights_saved_from_any_dtype_or_device_are_cpu_fp32(tmp_path, trained_run):
    """A GPU run's weights (bf16 under autocast, or on cuda) reach the file as fp32 CPU tensors."""
    from safetensors import safe_open

    from models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(trained_run)
    ckpt.state_dict = {k: v.to(torch.bfloat16) for k, v in ckpt.state_dict.items()}
    path = save_checkpoint(ckpt, tmp_path / "moved.safetensors")
    with safe_open(str(path), framework="pt") as f:
        names = f.keys()  # a safetensors handle, not a dict
        dtypes = {f.get_tensor(k).dtype for k in names}
    assert dtypes == {torch.float32}
    loaded = load_checkpoint(path)
    assert all(v.device.type == "cpu" for v in loaded.state_dict.values())


def test_a_resumed_run_continues_on_the_chosen_device(tmp_path, periodic_corpus):
    from tests.helpers import tiny_config
    from trainer.train import Trainer

    first = Trainer.start(tiny_config(tmp_path, periodic_corpus, max_steps=20, eval_every=10, stop_after=10))
    assert first.run().status == "paused"
    resumed = Trainer.resume(str(tmp_path / "run"), device="cpu", stop_after=None)
    assert resumed.device == torch.device("cpu") and resumed.step == 10
    assert all(p.device.type == "cpu" for p in resumed.model.parameters())
    assert resumed.run().step == 20


# ----- the CLI: one line and exit code 2 for a device this machine lacks -----

@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("command", [["sample"], ["eval"], ["neurons", "find"]])
def test_cli_asked_for_cuda_without_one_fails_in_one_line(trained_run, command):
    from tests.helpers import assert_clean_error, run_cli

    proc = run_cli(*command, "--checkpoint", str(trained_run), "--device", "cuda")
    assert proc.returncode == 2
    assert_clean_error(proc, "no CUDA GPU is available here")


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_train_asked_for_cuda_without_one_fails_before_touching_the_run(tmp_path, periodic_corpus):
    from tests.helpers import assert_clean_error, run_cli

    run = tmp_path / "run"
    proc = run_cli("train", "--corpus", str(periodic_corpus), "--run-dir", str(run), "--device", "cuda:1",
                   "--max-steps", "2")
    assert proc.returncode == 2
    assert_clean_error(proc, "no CUDA GPU is available here")
    assert not run.exists() or not any(run.iterdir())


def test_cli_says_where_it_runs(trained_run):
    from tests.helpers import run_cli

    proc = run_cli("sample", "--checkpoint", str(trained_run), "--device", "auto", "--length", "5",
                   "--prime", "the ")
    assert proc.returncode == 0, proc.stderr
    assert f"rnnbot: running on {describe(resolve_device('auto'))}" in proc.stderr
