"""Figures and the printed-source helper: what they draw is what they were given."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from blackout_tutorial import plotting, process


def test_image_grid_places_each_image_scaled_by_n_max():
    images = torch.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)  # counts 0..11
    ax = plotting.image_grid(images, n_max=11, nrow=2)
    grid = ax.get_images()[0].get_array()
    # one-pixel white borders; image i starts at column 1 + i (w + 1)
    assert np.allclose(grid[1:3, 1:4], images[0, 0].numpy() / 11)
    assert np.allclose(grid[1:3, 5:8], images[1, 0].numpy() / 11)
    assert np.allclose(grid[0], 1.0)
    plt.close("all")


def test_save_image_grid_writes_a_png(tmp_path):
    path = tmp_path / "sub" / "grid.png"
    plotting.save_image_grid(torch.zeros(4, 1, 5, 5), n_max=1, path=path, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loss_history_draws_the_running_mean():
    history = np.column_stack([np.arange(10.0), np.zeros(10), np.zeros(10)])
    _, ax = plt.subplots()
    plotting.loss_history(ax, history, window=4)
    raw, smooth = ax.get_lines()
    assert np.allclose(raw.get_ydata(), np.arange(10.0))
    assert np.allclose(smooth.get_ydata(), np.arange(10.0)[3:] - 1.5)
    plt.close("all")


def test_masked_view_colours_only_the_hidden_pixels():
    images = torch.full((1, 1, 2, 2), 4)
    mask = torch.tensor([[[[True, False], [True, True]]]])
    rgb = plotting.masked_view(images, mask, n_max=8, hidden_color=(1.0, 0.0, 0.0))
    assert rgb.shape == (1, 2, 2, 3)
    assert np.allclose(rgb[0, 0, 1], [1.0, 0.0, 0.0])
    assert np.allclose(rgb[0, 1, 1], [0.5, 0.5, 0.5])


def test_show_source_is_one_fenced_python_block():
    shown = plotting.show_source(process.survival, process.marginal_pmf)
    text = shown.data
    assert text.startswith("```python\ndef survival(") and text.endswith("\n```")
    assert "\ndef marginal_pmf(" in text and text.count("```") == 2


def test_show_source_needs_an_object():
    with pytest.raises(ValueError, match="at least one"):
        plotting.show_source()


def test_show_source_excerpt_by_strings_and_numbers():
    import inspect

    from blackout_tutorial import losses

    src, first = inspect.getsourcelines(losses.negative_elbo)
    shown = plotting.show_source(losses.negative_elbo,
                                 lines=("q = step_probabilities", "return nats")).data
    body = shown.split("```")[1]
    assert body.startswith("python\ndef negative_elbo(model, x0, times, n_max, n_terms="
                           "None, step_probs=None,\n")
    assert "\n    # ...\n    q = step_probabilities(times)\n" in body
    assert body.rstrip().endswith("return nats")  # the function's last line: no tail
    start = first + next(i for i, line in enumerate(src) if "q = step_prob" in line)
    assert (f"Excerpt: lines {start}-{first + len(src) - 1} of "
            "`blackout_tutorial/losses.py`") in shown
    assert f"is lines {first}-{first + len(src) - 1}" in shown
    numbered = plotting.show_source(process.marginal_pmf, lines=(1, 3)).data
    assert numbered.startswith("```python\ndef marginal_pmf(")
    assert numbered.split("```")[1].rstrip().endswith("# ...")
    assert numbered.split("```")[1].count("\n") == 5  # tag line, 3 lines, marker
    middle = plotting.show_source(process.marginal_pmf, lines=(3, 3)).data
    assert middle.startswith("```python\ndef marginal_pmf(n0, t, n_max=None):\n"
                             "    # ...")


def test_show_source_excerpt_bad_lines():
    with pytest.raises(ValueError, match="lines: no source line contains"):
        plotting.show_source(process.survival, lines=("no such text", "return"))
    with pytest.raises(ValueError, match="lines must hold strings or line numbers"):
        plotting.show_source(process.survival, lines=(0, 2))
    with pytest.raises(ValueError, match="exactly one object"):
        plotting.show_source(process.survival, process.marginal_pmf, lines=(1, 2))
    with pytest.raises(ValueError, match="stop"):
        plotting.show_source(process.marginal_pmf, lines=(5, 2))
