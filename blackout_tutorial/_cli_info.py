"""``python -m blackout_tutorial info``: every setting of a preset and the parameter
count of its network (Chapter 9)."""
import json


def add_parser(sub):
    """Register the ``info`` subcommand."""
    from blackout_tutorial.presets import PRESETS, SCALES
    i = sub.add_parser(
        "info", help="print every setting of a preset and its network size",
        description="Print every setting of a preset (flattened field names) and "
                    "the parameter count of its network; nothing is trained.")
    i.add_argument("--preset", required=True, choices=PRESETS, help="which preset")
    i.add_argument("--scale", default=None, choices=SCALES,
                   help="default: laptop (full for the *-paper presets)")
    i.add_argument("--json", action="store_true",
                   help="one JSON object instead of aligned lines")
    i.set_defaults(no_progress=True)


def settings(name, scale=None):
    """``{setting: value}`` of preset ``name`` at ``scale`` plus ``parameters``; the
    network is built on the meta device (no memory, no initialisation cost)."""
    import torch

    from blackout_tutorial import _paper, nets, presets, runs
    if scale is None:
        scale = "full" if name in presets.PAPER else presets.DEFAULT_SCALE
    preset = presets.get_preset(name, scale)
    flat = _paper.flat_settings(preset)
    with torch.device("meta"):
        model = runs.build_rate_model(preset, runs.image_spec(preset.dataset)[1])
    flat["parameters"] = nets.count_parameters(model)
    return flat


def run(args):
    """Print the settings of ``args.preset`` (a ValueError for a bad scale)."""
    flat = settings(args.preset, args.scale)
    if args.json:
        print(json.dumps(flat))
        return
    for key, value in flat.items():
        print(f"{key:28s} {value}")
