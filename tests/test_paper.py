"""Tests of the paper presets (blackout_tutorial._paper, Chapter 9)."""
import json

import pytest
import torch

from blackout_tutorial import _paper, data, nets, presets, runs, train


@pytest.mark.parametrize("name", presets.PAPER)
def test_paper_presets_train_one_step_and_sample_on_the_cpu(name, tmp_path,
                                                             one_thread):
    preset = presets.get_preset(name, "smoke")
    dataset = data.load_dataset(preset.dataset, tmp_path / "data")
    result = train.train(preset, tmp_path / "run", dataset=dataset, device="cpu",
                         progress=False, stop_at=1)
    assert result.step == 1 and torch.isfinite(torch.as_tensor(result.history)).all()
    x = runs.generate(tmp_path / "run", 2, steps=5, device="cpu")
    shape, n_max = runs.image_spec(preset.dataset)
    assert x.shape == (2, *shape) and int(x.max()) <= n_max
    # The same seed gives the same images, dropout on (seeded per batch).
    assert torch.equal(x, runs.generate(tmp_path / "run", 2, steps=5, device="cpu"))


@pytest.mark.parametrize("name, count", [("cifar10-paper", 62_693_251),
                                         ("binarized-mnist-paper", 62_686_337),
                                         ("celeba64-paper", 62_693_251)])
def test_full_paper_networks_have_the_official_parameter_counts(name, count):
    preset = presets.get_preset(name, "full")
    with torch.device("meta"):
        model = runs.build_rate_model(preset, runs.image_spec(preset.dataset)[1])
    assert nets.count_parameters(model) == count


@pytest.mark.parametrize("name", presets.PAPER)
def test_paper_presets_round_trip_through_json_and_refuse_laptop(name):
    for scale in ("smoke", "full"):
        preset = presets.get_preset(name, scale)
        text = json.dumps(presets.to_dict(preset))
        assert presets.from_dict(json.loads(text)) == preset
    with pytest.raises(ValueError, match="scale.*smoke.*full"):
        presets.get_preset(name, "laptop")


def test_full_paper_presets_state_the_official_settings():
    for name in presets.PAPER:
        flat = _paper.flat_settings(presets.get_preset(name, "full"))
        expected = {"T": 1000, "net_type": "ncsnpp", "parameterisation": "official",
                    "train.lr": 2e-4, "train.warmup_steps": 0, "train.grad_clip": 0.0,
                    "train.ema_decay": 0.9999, "train.ema_order": "before",
                    "train.bf16": False, "train.steps": 1_300_000,
                    "sample_steps": 1000, "sample_method": "binomial_bridge",
                    "sample_rounding": "nearest", "sample_dropout": True,
                    "sample_batch": 512, "net.nf": 128, "net.num_res_blocks": 4,
                    "net.dropout": 0.1}
        assert {k: flat[k] for k in expected} == expected
    batch = {n: presets.get_preset(n, "full").train.batch_size for n in presets.PAPER}
    assert list(batch.values()) == [256, 256, 100]
    t_end = [presets.get_preset(n, "full").t_end for n in presets.PAPER]
    assert t_end == [15.0, 10.0, 15.0]
    flips = [presets.get_preset(n, "full").train.hflip for n in presets.PAPER]
    assert flips == [True, False, False]
    counts = [presets.get_preset(n, "full").sample_count for n in presets.PAPER]
    assert counts == [50_000, 60_000, 50_000]


@pytest.mark.parametrize("name", presets.PAPER)
def test_paper_presets_equal_the_official_table_on_every_setting(name):
    flat = _paper.settings_with_parameters(presets.get_preset(name, "full"))
    official = _paper.official_settings(name)
    assert {k: flat[k] for k in official} == official


def test_fidelity_tables_are_generated_from_the_presets():
    rows = _paper.fidelity_rows()
    assert [r[0] for r in rows] == list(_paper.OFFICIAL)
    assert all(r[4] for r in rows)               # every difference says why
    table = _paper.fidelity_markdown()
    assert "| `train.warmup_steps` | none" in table and "| 5000 |" in table
    assert "62,693,251" in table and "35,746,307" in table
    runs_table = _paper.runs_markdown()
    assert "4.58" in runs_table and "3.22" in runs_table
    cost = _paper.cost_estimate("cifar10-paper", tflops=1.0)
    assert cost["train_flop"] == pytest.approx(1_300_000 * 256 * 65.3e9)
    train_cmd, sample_cmd = _paper.commands("binarized-mnist-paper")
    assert " ".join(train_cmd.replace("\\\n", " ").split()).endswith(
        "--preset binarized-mnist-paper --scale full --out runs/binarized-mnist-paper")
    assert "--n 60000" in sample_cmd
    assert max(len(line) for line in presets.paper_runs_table().splitlines()
               if line.startswith(("python", "  "))) <= 88
    assert presets.still_different().count("\n* ") == len(_paper.STILL_DIFFERENT) - 1
    assert presets.fidelity_table() == _paper.fidelity_markdown()


def test_an_interrupted_paper_run_resumes_exactly(tmp_path, one_thread):
    # EMA before the step, no clipping, fp32, dropout 0.1: still bit-for-bit resumable.
    preset = presets.get_preset("cifar10-paper", "smoke")
    dataset = data.load_dataset(preset.dataset, tmp_path / "data")
    kwargs = dict(dataset=dataset, device="cpu", progress=False)
    straight = train.train(preset, tmp_path / "a", **kwargs)
    train.train(preset, tmp_path / "b", stop_at=1, **kwargs)
    resumed = train.train(preset, tmp_path / "b", **kwargs)
    assert resumed.step == straight.step == 2
    assert (resumed.history == straight.history).all()
    for k, v in straight.ema.state_dict().items():
        assert torch.equal(v, resumed.ema.state_dict()[k]), k
