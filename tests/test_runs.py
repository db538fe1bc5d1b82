"""Tests of blackout_tutorial.runs: checkpoint format and validation, the one export,
the shipped checkpoints, batched and sharded generation, and the sample files (.npz,
FID arr_0, PNG)."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from blackout_tutorial import (
    data,
    losses,
    nets,
    presets,
    runs,
    sampling,
    schedule,
    train,
)


def micro_preset(steps=4):
    p = presets.get_preset("digits", "smoke")
    cfg = replace(p.train, steps=steps, batch_size=16, checkpoint_every=4)
    net = nets.net_config("tiny", channels=8, num_groups=4)
    return replace(p, net=net, train=cfg, T=50)


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


@pytest.fixture(scope="module")
def micro_run(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train.train(micro_preset(), out, dataset=digits, device="cpu",
                       progress=False)


def test_checkpoint_is_tensors_only_and_loads_the_ema(micro_run, digits):
    path = micro_run.out_dir / runs.CHECKPOINT
    state = torch.load(path, weights_only=True)
    assert state["format"] == runs.FORMAT and state["step"] == 4
    assert state["builder"] == runs.builder_name(runs.build_rate_model)
    assert state["history"].shape == (4, 3)
    model, preset = runs.load_model(micro_run.out_dir, device="cpu")
    assert preset == micro_preset() and not model.training
    x, t = digits.test[:4].float(), torch.full((4,), 0.7)
    torch.testing.assert_close(model(x, t), micro_run.ema(x, t))
    assert not list(micro_run.out_dir.glob(".*tmp*"))        # no temporary file left


def test_export_keeps_seconds_and_history_in_float16(micro_run, digits, tmp_path):
    path = runs.export(micro_run.out_dir, tmp_path / "small.pt")
    state = runs.read_checkpoint(path)
    assert {v.dtype for v in state["ema"].values()} == {torch.float16}
    full_state = runs.read_checkpoint(micro_run.out_dir / runs.CHECKPOINT)
    assert state["seconds"] == full_state["seconds"] > 0
    np.testing.assert_allclose(state["history"].numpy(), micro_run.history, rtol=1e-6)
    small, _ = runs.load_model(path, device="cpu")
    full, _ = runs.load_model(micro_run.out_dir, device="cpu")
    x, t = digits.test[:4].float(), torch.full((4,), 0.7)
    torch.testing.assert_close(small(x, t), full(x, t), rtol=1e-2, atol=1e-3)
    checkpoint = micro_run.out_dir / runs.CHECKPOINT
    assert path.stat().st_size < checkpoint.stat().st_size / 3
    with pytest.raises(runs.CheckpointError, match="holds no 'model' weights"):
        runs.load_model(path, ema=False)


def test_broken_and_foreign_checkpoints_give_clear_errors(micro_run, tmp_path):
    blob = (micro_run.out_dir / runs.CHECKPOINT).read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(runs.CheckpointError, match="corrupted or not a checkpoint"):
        runs.read_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(runs.CheckpointError,
                       match="not a blackout_tutorial checkpoint"):
        runs.load_model(tmp_path / "other.pt")
    with pytest.raises(runs.CheckpointError, match="no checkpoint"):
        runs.load_model(tmp_path / "nothing-here")


def test_same_run_check_names_the_differences(micro_run):
    state = runs.read_checkpoint(micro_run.out_dir / runs.CHECKPOINT)
    runs.check_same_run(state, presets.with_overrides(micro_preset(), steps=9),
                        runs.build_rate_model, "x")               # more steps: same run
    with pytest.raises(runs.CheckpointError, match=r"train\.seed: 0 vs 3"):
        runs.check_same_run(state, presets.with_overrides(micro_preset(), seed=3),
                            runs.build_rate_model, "x")
    from blackout_tutorial import baselines
    with pytest.raises(runs.CheckpointError, match="model builder"):
        runs.check_same_run(state, micro_preset(), baselines.build_eps_model, "x")


def test_shipped_checkpoints_match_their_sha256_and_load(digits):
    for name in runs.PRETRAINED_SHA256:
        path = runs.pretrained_path(name)
        assert data.file_digest(path, "sha256") == runs.PRETRAINED_SHA256[name]
        assert path.stat().st_size < 20 * 2 ** 20
    model, preset, info = runs.load_pretrained("digits_laptop", device="cpu")
    assert (preset.name, preset.scale, info["step"]) == ("digits", "laptop", 2000)
    assert info["history"].shape == (2000, 3) and info["seconds"] > 0


def test_shipped_mnist_checkpoint_is_a_trained_rate_model():
    model, preset, info = runs.load_pretrained(device="cpu")
    assert preset.dataset == "mnist5k" and model.n_max == 255
    assert info["history"].shape == (info["step"], 3) and info["seconds"] > 0
    x0 = data.load_mnist5k().test[:32].float()
    times = schedule.observation_times(preset.T, preset.t_end)
    weights = schedule.loss_weights(times)

    def loss(m):
        gen = torch.Generator().manual_seed(0)
        return float(losses.blackout_loss(m, x0, times, weights, generator=gen))
    with torch.no_grad():
        fresh = nets.build_rate_model(preset.net, 255).eval()
        assert loss(model) < loss(fresh) - 20.0      # measured gap: about 80


def test_shipped_digits_checkpoint_generates_digits(digits):
    from blackout_tutorial import evaluate
    model, preset, _ = runs.load_pretrained("digits_laptop", device="cpu")
    x = runs.generate(model, 300, 50, "tau_leaping", preset=preset, seed=0,
                      batch_size=300)
    report = evaluate.digit_report(x, digits)
    # Chapter 7's model reaches ~0.9 of the real confident fraction at 250 steps; at 50
    # steps and 300 samples 0.6 leaves a wide margin, and pixel noise scores below 0.1.
    assert report["confident_ratio"] > 0.6 and report["min_class_fraction"] > 0.02


def test_corrupted_shipped_checkpoint_fails_its_checksum(tmp_path, monkeypatch):
    shutil.copy(runs.pretrained_path("mnist5k_small"), tmp_path / "mnist5k_small.pt")
    with open(tmp_path / "mnist5k_small.pt", "r+b") as f:
        f.seek(100)
        f.write(b"\x00corrupt")
    monkeypatch.setattr(runs, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(runs.CheckpointError, match="sha256"):
        runs.load_pretrained()
    with pytest.raises(runs.CheckpointError, match="name"):
        runs.pretrained_path("cifar10_huge")


def test_finetune_continues_the_shipped_run(tmp_path):
    preset = runs.start_finetune(tmp_path, extra_steps=1, batch_size=4)
    _, _, info = runs.load_pretrained(device="cpu")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 1, 28, 28), generator=gen).to(torch.uint8)
    labels = torch.zeros(20, dtype=torch.long)
    small = data.CountDataset("mnist5k", images[:16], images[16:], labels[:16],
                              labels[16:], 255)
    result = train.train(preset, tmp_path, dataset=small, device="cpu", progress=False)
    assert result.step == info["step"] + 1 and len(result.history) == info["step"] + 1
    with pytest.raises(ValueError, match="extra_steps"):
        runs.start_finetune(tmp_path / "again", extra_steps=0)


def test_one_batch_of_generate_is_one_sampling_call(micro_run):
    model, preset = micro_run.ema, micro_run.preset
    x = runs.generate(model, 5, 4, "binomial_bridge", preset=preset, seed=7)
    gen = torch.Generator().manual_seed(7)
    times = schedule.observation_times(4, preset.t_end)
    ref = sampling.sample(model, (5, 1, 8, 8), times, "binomial_bridge", 16,
                          generator=gen)
    assert x.dtype == torch.uint8 and torch.equal(x, ref.to(torch.uint8))
    with pytest.raises(ValueError, match="preset"):
        runs.generate(model, 5, 4)
    with pytest.raises(ValueError, match="n must"):
        runs.generate(micro_run.out_dir, 0)


def test_sharded_generation_resumes_with_identical_images(micro_run, tmp_path):
    run = micro_run.out_dir
    first = runs.generate(run, 5, 3, batch_size=2, device="cpu", shard_dir=tmp_path)
    assert first.shape == (5, 1, 8, 8) and first.dtype == torch.uint8
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"shard_{i:05d}.npz"
                                                           for i in range(3)]
    (tmp_path / "shard_00001.npz").unlink()                  # as if interrupted
    again = runs.generate(run, 5, 3, batch_size=2, device="cpu", shard_dir=tmp_path)
    assert torch.equal(again, first)
    assert torch.equal(runs.generate(run, 5, 3, batch_size=2, device="cpu"), first)


def test_generate_takes_a_sampler_function(micro_run):
    calls = []

    def sampler(model, shape, steps, n_max, generator=None, device=None):
        calls.append((shape, steps, n_max))
        return torch.full(shape, n_max, dtype=torch.long)
    x = runs.generate(micro_run.ema, 3, 6, sampler, preset=micro_run.preset,
                      batch_size=2)
    assert calls == [((2, 1, 8, 8), 6, 16), ((1, 1, 8, 8), 6, 16)]
    assert int(x.min()) == 16


class _AutocastProbe(torch.nn.Module):
    """A rate model that records whether CPU bf16 autocast is on and the dtype it
    returns in; its rates are constant (mean 2 births per pixel and unit time)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, x, t):
        self.seen.append(torch.is_autocast_enabled("cpu"))
        y = torch.nn.functional.linear(x.flatten(1), torch.eye(x[0].numel()))
        return (0 * y + 2 * self.scale).view_as(x)


def test_generate_bf16_runs_the_network_under_autocast(micro_run):
    probe = _AutocastProbe()
    plain = runs.generate(probe, 4, 3, preset=micro_run.preset, seed=1)
    assert probe.seen and not any(probe.seen)
    probe.seen.clear()
    half = runs.generate(probe, 4, 3, preset=micro_run.preset, seed=1, bf16=True)
    assert probe.seen and all(probe.seen)
    assert torch.equal(half, plain)          # 2.0 is exact in bfloat16: same draws
    x = runs.generate(micro_run.ema, 6, 4, preset=micro_run.preset, bf16=True)
    assert x.shape == (6, 1, 8, 8) and int(x.max()) <= 16
    with pytest.raises(ValueError, match="bf16"):
        runs.generate(probe, 4, 3, preset=micro_run.preset, bf16="yes")
    with pytest.raises(ValueError, match="compile"):
        runs.generate(probe, 4, 3, preset=micro_run.preset, compile=1)


def test_generate_compile_calls_torch_compile_once_and_falls_back(micro_run,
                                                                   monkeypatch):
    """``compile=True`` goes through torch.compile (here a stand-in, as real
    compilation takes a minute on a CPU; benchmarks/sample_speed.py times the real one);
    a compilation that fails warns and gives exactly the eager samples."""
    model, preset = micro_run.ema, micro_run.preset
    eager = runs.generate(model, 5, 4, preset=preset, seed=3, batch_size=2)
    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(module)
        return module
    monkeypatch.setattr(torch, "compile", fake_compile)
    same = runs.generate(model, 5, 4, preset=preset, seed=3, batch_size=2,
                         compile=True)
    assert compiled == [model] and torch.equal(same, eager)

    def broken_compile(module, **kwargs):
        def fail(*args, **kw):
            raise RuntimeError("no C compiler found")
        return fail
    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no C compiler"):
        fallback = runs.generate(model, 5, 4, preset=preset, seed=3, batch_size=2,
                                 compile=True)
    assert torch.equal(fallback, eager)


@pytest.mark.parametrize("n_max", [1, 16, 255])
def test_npz_round_trip_keeps_n_max_for_every_data_set(tmp_path, n_max):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, n_max + 1, (5, 1, 4, 4), generator=gen)
    path = runs.save_samples_npz(x, tmp_path / "s.npz", n_max=n_max)
    with np.load(path) as f:
        assert f["samples"].dtype == np.uint8 and f["samples"].shape == (5, 1, 4, 4)
        assert int(f["n_max"]) == n_max
    back, back_n_max = runs.load_samples_npz(path)
    assert back_n_max == n_max and torch.equal(back, x.to(torch.uint8))


def test_npz_without_n_max_is_refused(tmp_path):
    np.savez_compressed(tmp_path / "old.npz", samples=np.zeros((2, 1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="n_max"):
        runs.load_samples_npz(tmp_path / "old.npz")


def test_fid_npz_is_nhwc_rgb_8_bit(tmp_path):
    x = torch.tensor([[[[0, 8], [16, 4]]]])
    with np.load(runs.save_fid_npz(x, tmp_path / "fid.npz", 16)) as f:
        arr = f["arr_0"]
    assert arr.dtype == np.uint8 and arr.shape == (1, 2, 2, 3)
    assert arr[0, :, :, 0].tolist() == [[0, 128], [255, 64]]
    assert (arr[..., 2] == arr[..., 0]).all()


@pytest.mark.parametrize("bad, message", [
    (torch.full((2, 1, 4, 4), -1), "non-negative"),
    (torch.full((2, 1, 4, 4), 256), "n_max"),
    (torch.full((2, 1, 4, 4), 0.5), "integer"),
    (torch.zeros(2, 4, 4), r"\[N, C, H, W\]"),
])
def test_sample_files_reject_bad_samples(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        runs.save_samples_npz(bad, tmp_path / "bad.npz", 255)
    with pytest.raises(ValueError, match=message):
        runs.save_samples_png(bad, tmp_path / "bad", 255)


def test_png_export_scales_counts_to_8_bit(tmp_path):
    from PIL import Image
    binary = torch.tensor([[[[0, 1], [1, 0]]]])
    runs.save_samples_png(binary, tmp_path / "bin", n_max=1, start=7)
    img = np.asarray(Image.open(tmp_path / "bin" / "000007.png"))
    assert img.tolist() == [[0, 255], [255, 0]]
    gen = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (3, 3, 8, 8), generator=gen)
    runs.save_samples_png(rgb, tmp_path / "rgb", 255)
    back = np.asarray(Image.open(tmp_path / "rgb" / "000002.png"))
    assert back.shape == (8, 8, 3)
    assert np.array_equal(back, rgb[2].permute(1, 2, 0).numpy())


def _payload_offset(path):
    """Offset and size of the largest member (a tensor's bytes) of the zip archive."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename),
                   key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_flipped_bytes_inside_a_checkpoint_are_caught(micro_run, tmp_path):
    # REVIEW E: 4 KiB of flipped bytes loaded silently (torch skips the zip CRCs).
    path = tmp_path / "flipped.pt"
    shutil.copy(micro_run.out_dir / runs.CHECKPOINT, path)
    start, size = _payload_offset(path)
    assert size > 4096 + 64
    blob = bytearray(path.read_bytes())
    blob[start + 64:start + 64 + 4096] = bytes(b ^ 0xFF for b in
                                               blob[start + 64:start + 64 + 4096])
    path.write_bytes(bytes(blob))
    torch.load(path, weights_only=True)           # torch itself notices nothing
    with pytest.raises(runs.CheckpointError, match=r"flipped\.pt.*SHA-256"):
        runs.read_checkpoint(path)
    with pytest.raises(runs.CheckpointError, match="flipped.pt"):
        runs.load_model(path)


def _edited(micro_run, tmp_path, **config_changes):
    """A copy of the run's checkpoint with an edited config and a matching digest."""
    state = torch.load(micro_run.out_dir / runs.CHECKPOINT, weights_only=True)
    config = json.loads(state["config"])
    config.update(config_changes)
    state["config"] = json.dumps(config)
    state["sha256"] = runs.payload_digest(state)
    torch.save(state, tmp_path / "edited.pt")
    return tmp_path / "edited.pt"


def test_a_digits_checkpoint_with_an_edited_config_does_not_sample_28x28(micro_run,
                                                                          tmp_path):
    # REVIEW E: dataset edited to mnist5k sampled 28x28 images with digits weights.
    path = _edited(micro_run, tmp_path, dataset="mnist5k")
    with pytest.raises(runs.CheckpointError, match=r"edited\.pt.*n_max 16.*mnist5k"):
        runs.load_model(path)
    state = torch.load(micro_run.out_dir / runs.CHECKPOINT, weights_only=True)
    state["config"] = state["config"].replace('"digits"', '"mnist5k"')
    torch.save(state, tmp_path / "no_digest.pt")       # edited without a new digest
    with pytest.raises(runs.CheckpointError, match=r"no_digest\.pt.*SHA-256"):
        runs.read_checkpoint(tmp_path / "no_digest.pt")


@pytest.mark.parametrize("changes, field", [
    ({"T": "abc"}, "T"), ({"dataset": "nope"}, "dataset"), ({"t_end": -1}, "t_end"),
])
def test_a_checkpoint_whose_config_fails_validation_names_the_file(micro_run, tmp_path,
                                                                    changes, field):
    path = _edited(micro_run, tmp_path, **changes)
    with pytest.raises(runs.CheckpointError, match=rf"edited\.pt.*{field}"):
        runs.read_checkpoint(path)


def test_atomic_write_fsyncs_before_the_rename_and_cleans_up(tmp_path, monkeypatch):
    from blackout_tutorial import _files
    calls = []
    real_fsync, real_replace = _files.os.fsync, _files.os.replace
    monkeypatch.setattr(_files.os, "fsync",
                        lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(_files.os, "replace",
                        lambda a, b: (calls.append("replace"), real_replace(a, b)))
    runs.atomic_write(tmp_path / "f.txt", lambda tmp: tmp.write_text("x"))
    assert calls[:2] == ["fsync", "replace"] and (tmp_path / "f.txt").read_text() == "x"

    def fails(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        runs.atomic_write(tmp_path / "g.txt", fails)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        runs.atomic_write(tmp_path, lambda tmp: None)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        runs.atomic_write(tmp_path / "nowhere" / "f", lambda tmp: None)


def _dead_pid():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_writes_are_removed(tmp_path):
    # REVIEW E: every kill during a checkpoint write left a .checkpoint.pt.tmp<PID>.
    dead = _dead_pid()
    for name in (f".checkpoint.pt.tmp{dead}", f".history.csv.tmp{dead}"):
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / "notes.tmp1").write_text("a user's file")     # not ours: kept
    removed = runs.remove_stale_temporaries(tmp_path)
    assert len(removed) == 2 and [p.name for p in tmp_path.iterdir()] == ["notes.tmp1"]


def test_export_refuses_a_non_float_dtype(micro_run, tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        runs.export(micro_run.out_dir, tmp_path / "e.pt", dtype=torch.int8)
    assert not (tmp_path / "e.pt").exists()


@pytest.mark.parametrize("bad, message", [(None, "path"), (3, "path"),
                                          ("nowhere.pt", "nowhere")])
def test_checkpoint_paths_are_named(bad, message):
    with pytest.raises(runs.CheckpointError, match=message):
        runs.load_model(bad)


# Measured loss gaps to a fresh network on the 64 stored test images: 67, 0.26, 15.4.
@pytest.mark.parametrize("name, gap", [("mnist", 30.0), ("binarized-mnist", 0.1),
                                       ("cifar10", 5.0)])
def test_shipped_real_data_checkpoints_are_their_presets_and_trained(name, gap):
    model, preset, info = runs.load_pretrained(name, device="cpu")
    # The pinned recipe (scripts/train_shipped.py): the preset, then continuations
    # that change only the number of steps.
    pinned = presets.get_preset(f"{name}-cpu", "laptop")
    assert preset == presets.with_overrides(pinned, steps=preset.train.steps)
    assert info["step"] == preset.train.steps >= pinned.train.steps
    assert info["seconds"] > 0
    excerpt = Path(__file__).resolve().parents[1] / "book" / "results" / \
        f"{name}_real64.npz"                        # 64 real test images
    x0, n_max = runs.load_samples_npz(excerpt)
    assert n_max == model.n_max
    times = schedule.observation_times(preset.T, preset.t_end)
    weights = schedule.loss_weights(times)

    def loss(m):
        gen = torch.Generator().manual_seed(0)
        return float(losses.blackout_loss(m, x0.float(), times, weights, generator=gen))
    with torch.no_grad():
        torch.manual_seed(0)
        fresh = runs.build_rate_model(preset, n_max).eval()
        assert loss(model) < loss(fresh) - gap
