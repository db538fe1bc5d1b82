"""Tests of the training loop (blackout_tutorial.train, Chapters 7 and 10): exact
resume after an interruption (in process and after SIGKILL), resume refusing other
configurations, divergence detection, EMA/warmup/data-order helpers, the Gaussian
baseline through the same loop, and DistributedDataParallel with 2 gloo processes."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from blackout_tutorial import baselines, data, losses, nets, presets, runs, train

ROOT = Path(__file__).resolve().parents[1]


def micro_preset(steps=12, **train_overrides):
    """A digits preset with a very small network: a step costs milliseconds."""
    p = presets.get_preset("digits", "smoke")
    net = nets.net_config("tiny", channels=8, num_groups=4)
    cfg = replace(p.train, **{"steps": steps, "batch_size": 16, "checkpoint_every": 4,
                              **train_overrides})
    return replace(p, net=net, train=cfg, T=50)


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    """The reference: a 16-step micro run without interruption."""
    return train.train(micro_preset(steps=16), tmp_path_factory.mktemp("full"),
                       dataset=digits, device="cpu", progress=False)


def test_batch_indices_walk_through_epoch_permutations():
    per_epoch = 10 // 3
    epoch0 = torch.cat([train.batch_indices(10, 3, s, seed=0)
                        for s in range(per_epoch)])
    assert len(set(epoch0.tolist())) == 9  # no repeats inside an epoch
    assert torch.equal(train.batch_indices(10, 3, 1, 0),
                       train.batch_indices(10, 3, 1, 0))
    epoch1 = torch.cat([train.batch_indices(10, 3, s, seed=0) for s in range(3, 6)])
    assert not torch.equal(epoch0, epoch1)
    with pytest.raises(ValueError, match="batch_size"):
        train.batch_indices(5, 8, 0, 0)


def test_cosine_decay_reaches_zero_and_bad_names_raise():
    cfg = presets.TrainConfig(lr=1e-3, warmup_steps=1, steps=100, lr_decay="cosine")
    assert train.learning_rate(cfg, 0) == pytest.approx(1e-3)
    assert train.learning_rate(cfg, 50) == pytest.approx(0.5e-3)
    assert train.learning_rate(cfg, 100) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="lr_decay"):
        train.learning_rate(replace(cfg, lr_decay="step"), 3)


def test_warmup_and_ema_formulas():
    cfg = presets.TrainConfig(lr=1e-3, warmup_steps=4)
    assert [train.learning_rate(cfg, s) for s in range(5)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    ema, model = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(ema.weight, 0.0)
    torch.nn.init.constant_(model.weight, 1.0)
    train.update_ema(ema, model, decay=0.999, step=0)  # ramp: d = 1/10
    assert ema.weight.item() == pytest.approx(0.9)
    train.update_ema(ema, model, decay=0.5, step=1000)  # d = min(0.5, ...) = 0.5
    assert ema.weight.item() == pytest.approx(0.95)


def test_interrupted_run_resumes_with_the_identical_loss_curve(tmp_path, digits,
                                                               uninterrupted):
    p, full = micro_preset(steps=16), uninterrupted
    part = train.train(p, tmp_path / "cut", dataset=digits, device="cpu",
                       progress=False, stop_at=6)
    assert part.step == 6
    # tensors only:
    ckpt = torch.load(tmp_path / "cut" / runs.CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 6 and ckpt["history"].shape == (6, 3)
    resumed = train.train(p, tmp_path / "cut", dataset=digits, device="cpu",
                          progress=False)
    assert resumed.step == 16
    np.testing.assert_array_equal(resumed.history, full.history)
    for a, b in zip(resumed.ema.state_dict().values(), full.ema.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert np.isfinite(full.history).all()
    rows = (tmp_path / "cut" / "history.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,grad_norm" and len(rows) == 17
    # More steps extend a finished run.
    longer = train.train(presets.with_overrides(p, steps=18), tmp_path / "cut",
                         dataset=digits, device="cpu", progress=False)
    assert longer.step == 18 and np.array_equal(longer.history[:16], full.history)


def test_sigkill_mid_run_then_resume_matches_uninterrupted_run(tmp_path, digits,
                                                               uninterrupted):
    p = micro_preset(steps=16)
    config = tmp_path / "preset.json"
    config.write_text(json.dumps(presets.to_dict(p)))
    script = textwrap.dedent(f"""
        import json, torch
        from blackout_tutorial import presets, train
        # bitwise equality needs the same threads
        torch.set_num_threads({torch.get_num_threads()})
        p = presets.from_dict(json.load(open({str(config)!r})))
        train.train(p, {str(tmp_path / 'killed')!r}, device="cpu", progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    history = tmp_path / "killed" / "history.csv"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 1 + 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(timeout=30) == -signal.SIGKILL, (
        "the run should have been killed mid-way")
    ckpt = torch.load(tmp_path / "killed" / runs.CHECKPOINT, weights_only=True)
    assert 4 <= int(ckpt["step"]) < 16
    resumed = train.train(p, tmp_path / "killed", dataset=digits, device="cpu",
                          progress=False)
    np.testing.assert_array_equal(resumed.history, uninterrupted.history)


def test_corrupted_and_mismatched_checkpoints_give_clear_errors(tmp_path, digits):
    p = micro_preset(steps=4)
    train.train(p, tmp_path / "run", dataset=digits, progress=False)
    ckpt = tmp_path / "run" / runs.CHECKPOINT
    with pytest.raises(runs.CheckpointError, match=r"train\.lr: 0\.001 vs 0\.5"):
        train.train(presets.with_overrides(p, lr=0.5), tmp_path / "run",
                    dataset=digits, progress=False)
    blob = ckpt.read_bytes()
    ckpt.write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(runs.CheckpointError, match="corrupted or not a checkpoint"):
        train.train(p, tmp_path / "run", dataset=digits, progress=False)
    torch.save({"weights": torch.zeros(2)}, ckpt)  # someone else's file
    with pytest.raises(runs.CheckpointError,
                       match="not a blackout_tutorial checkpoint"):
        runs.load_model(tmp_path / "run")
    with pytest.raises(runs.CheckpointError, match="no checkpoint"):
        runs.load_model(tmp_path / "nothing-here")


def test_gaussian_baseline_trains_and_resumes_through_the_same_loop(tmp_path, digits):
    p = micro_preset(steps=6)
    kwargs = dict(loss=baselines.gaussian_objective(digits.n_max, "elbo"),
                  build_model=baselines.build_eps_model, dataset=digits, device="cpu",
                  progress=False)
    full = train.train(p, tmp_path / "full", **kwargs)
    assert isinstance(full.ema, baselines.EpsModel) and np.isfinite(full.history).all()
    train.train(p, tmp_path / "cut", stop_at=3, **kwargs)
    resumed = train.train(p, tmp_path / "cut", **kwargs)
    np.testing.assert_array_equal(resumed.history, full.history)
    # The network is built under the run's seed: a second run starts from the same
    # weights.
    again = train.train(p, tmp_path / "again", **kwargs)
    np.testing.assert_array_equal(again.history, full.history)
    model, _ = runs.load_model(tmp_path / "full", device="cpu")
    assert isinstance(model, baselines.EpsModel)
    with pytest.raises(runs.CheckpointError, match="model builder"):
        train.train(p, tmp_path / "full", dataset=digits, device="cpu", progress=False)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, digits, monkeypatch):
    p = micro_preset(steps=4)
    def nan_loss(*args, **kwargs):
        return torch.tensor(float("nan"), requires_grad=True)

    monkeypatch.setattr(losses, "blackout_loss", nan_loss)
    with pytest.raises(FloatingPointError, match="training diverged at step 1"):
        train.train(p, tmp_path / "run", dataset=digits, progress=False)


def test_batch_must_split_evenly_over_processes(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(train._ddp, "setup", lambda device: (0, 3, device, False))
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        train.train(micro_preset(), tmp_path / "run", dataset=digits, progress=False)


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path):
    p = micro_preset(steps=4, checkpoint_every=2)
    config = tmp_path / "preset.json"
    config.write_text(json.dumps(presets.to_dict(p)))
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, torch
        from blackout_tutorial import presets, train
        torch.set_num_threads(1)
        p = presets.from_dict(json.load(open({str(config)!r})))
        result = train.train(p, {str(tmp_path / 'run')!r}, device="cpu", progress=False)
        torch.save({{k: v.clone() for k, v in result.model.state_dict().items()}},
                   {str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.pt")
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run",
                          "--nproc_per_node", "2", "--master_port", "29517",
                          str(script)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
                    for r in (0, 1))
    for name in rank0:  # DDP averaged the gradients: identical weights
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0)
    ckpt = torch.load(tmp_path / "run" / runs.CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 4 and torch.isfinite(ckpt["history"]).all()
    head = rank0["net.head.2.weight"]
    assert not torch.equal(head, torch.zeros_like(head))


@pytest.mark.parametrize("kwargs, field", [
    ({"stop_at": -1}, "stop_at"), ({"device": "bogus"}, "device"),
    ({"device": "cuda:99"}, "device"), ({"loss": 3}, "loss"),
    ({"build_model": "x"}, "build_model"), ({"dataset": "digits"}, "dataset"),
    ({"preset": None}, "preset"), ({"batch_size": 5000}, "batch_size"),
])
def test_bad_arguments_raise_before_a_folder_is_made(tmp_path, digits, kwargs, field):
    # REVIEW E: train(steps=-5) left a folder with only config.json.
    kwargs = {"dataset": digits, **kwargs}
    p = micro_preset(steps=2)
    if "batch_size" in kwargs:
        p = presets.with_overrides(p, batch_size=kwargs.pop("batch_size"))
    p = kwargs.pop("preset", p)
    with pytest.raises(ValueError, match=field):
        train.train(p, tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        train.train(micro_preset(steps=2), tmp_path / "file", dataset=digits)


def test_resuming_from_an_export_says_so(tmp_path, digits):
    # REVIEW E: an exported (EMA-only) file as checkpoint.pt gave KeyError 'model'.
    p = micro_preset(steps=2)
    train.train(p, tmp_path / "run", dataset=digits, progress=False)
    (tmp_path / "copy").mkdir()
    runs.export(tmp_path / "run", tmp_path / "copy" / runs.CHECKPOINT)
    with pytest.raises(runs.CheckpointError, match=r"copy/checkpoint\.pt is an export"):
        train.train(p, tmp_path / "copy", dataset=digits, progress=False)


def test_a_run_removes_what_a_killed_checkpoint_write_left(tmp_path, digits):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()                       # its pid is that of a process that is gone
    stale = tmp_path / "run" / f".checkpoint.pt.tmp{child.pid}"
    stale.parent.mkdir()
    stale.write_bytes(b"x" * 1000)
    train.train(micro_preset(steps=2), tmp_path / "run", dataset=digits, progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "config.json", "history.csv", "throughput.json"]


def test_batch_indices_name_a_zero_batch_size():
    with pytest.raises(ValueError, match="batch_size"):   # was a ZeroDivisionError
        train.batch_indices(100, 0, 0, 0)


@pytest.mark.parametrize("order", ["before", "after"])
def test_official_ema_order_averages_the_weights_before_the_step(tmp_path, digits,
                                                                 order):
    # With the ramp, the first update has d = 0.1. Before optimizer.step() the model
    # still holds the initial weights, so the EMA stays exactly at them; after the
    # step it moves 90% of the way to the updated weights.
    preset = micro_preset(steps=1, ema_order=order, ema_decay=0.9999)
    torch.manual_seed(preset.train.seed)
    initial = runs.build_rate_model(preset, digits.n_max).state_dict()
    result = train.train(preset, tmp_path, dataset=digits, device="cpu",
                         progress=False)
    ema, model = result.ema.state_dict(), result.model.state_dict()
    moved = [k for k in initial if not torch.equal(initial[k], model[k])]
    assert moved
    for k in moved:
        expected = initial[k] if order == "before" else torch.lerp(
            initial[k], model[k], 0.9)
        assert torch.allclose(ema[k], expected, atol=1e-7), k


def test_grad_clip_zero_measures_the_norm_without_clipping(digits):
    for clip in (0.0, 1e-3):
        preset = micro_preset(grad_clip=clip, warmup_steps=0)
        torch.manual_seed(0)
        model = runs.build_rate_model(preset, digits.n_max)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss = train.blackout_objective(preset, torch.device("cpu"))
        _, _, norm = train.training_step(model, optimizer, loss, digits.train,
                                         preset, 0)
        grads = torch.stack([p.grad.norm() for p in model.parameters()
                             if p.grad is not None])
        after = float(torch.linalg.vector_norm(grads))
        assert norm > 1e-2
        if clip:
            assert after == pytest.approx(clip, rel=1e-3)
        else:
            assert after == pytest.approx(norm, rel=1e-6)


def test_bf16_cpu_is_opt_in_and_changes_the_numerics_a_little(digits):
    """``preset.train.bf16`` acts on CUDA only; ``bf16_cpu`` turns autocast on on a
    CPU: the loss moves (bf16 convolutions) but stays within 5% of the fp32 one."""
    from blackout_tutorial import _train_args
    preset = micro_preset()
    assert preset.train.bf16
    assert not _train_args.uses_bf16(preset, "cpu", bf16_cpu=False)
    assert _train_args.uses_bf16(preset, "cpu", bf16_cpu=True)
    assert not _train_args.uses_bf16(replace(preset, train=replace(
        preset.train, bf16=False)), "cuda", bf16_cpu=True)
    values = []
    for bf16_cpu in (False, True, False):
        torch.manual_seed(0)
        model = runs.build_rate_model(preset, digits.n_max)
        opt = train.make_optimizer(model, 1e-3, "cpu")
        loss = train.blackout_objective(preset, "cpu")
        values.append([train.training_step(model, opt, loss, digits.train, preset,
                                           s, bf16_cpu=bf16_cpu) for s in (0, 1)])
    (_, first), (_, second), (_, third) = values  # the last layer starts at zero:
    assert first == third                         # fp32 is deterministic
    assert second[0] != first[0] and second[2] != first[2]  # bf16 really ran
    assert second[0] == pytest.approx(first[0], rel=0.05)
    assert second[2] == pytest.approx(first[2], rel=0.05)


def test_max_seconds_stops_with_a_checkpoint_and_a_rerun_continues(tmp_path, digits,
                                                                   uninterrupted):
    """A session out of time stops after the step it is in, checkpoints and writes
    throughput.json; rerunning continues to the identical loss curve."""
    preset = micro_preset(steps=16)
    first = train.train(preset, tmp_path, dataset=digits, device="cpu",
                        progress=False, max_seconds=1e-9)
    assert first.step == 1
    report = json.loads((tmp_path / "throughput.json").read_text())
    assert report["session_steps"] == 1 and report["total_steps"] == 1
    assert report["train_images_per_s"] > 0 and report["device"] == "cpu"
    assert report["peak_gpu_memory_bytes"] is None and report["peak_rss_bytes"] > 0
    assert report["bf16_autocast"] is False
    rest = train.train(preset, tmp_path, dataset=digits, device="cpu",
                       progress=False)
    assert rest.step == 16
    assert json.loads((tmp_path / "throughput.json").read_text())[
        "session_steps"] == 15
    np.testing.assert_array_equal(rest.history, uninterrupted.history)
    with pytest.raises(ValueError, match="max_seconds"):
        train.train(preset, tmp_path / "new", dataset=digits, max_seconds=0)
    assert not (tmp_path / "new").exists()
