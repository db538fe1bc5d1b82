"""The argument types of the command line (private): each parses one flag's text or
raises ``argparse.ArgumentTypeError``, which argparse reports as one line naming the
flag (exit status 2). Output paths are checked here, so before any work starts."""
import argparse
import math
import tempfile
from pathlib import Path


class UsageError(ValueError):
    """A bad command-line value found after parsing (exit code 2, one line)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def integer(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a finite number > 0, got {text!r}")
    return value


def device(text):
    from blackout_tutorial.presets import resolve_device
    try:
        return resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def existing(kind):
    def parse(text):
        path = Path(text)
        ok = {"file": path.is_file, "folder": path.is_dir, "path": path.exists}[kind]
        if not ok():
            raise argparse.ArgumentTypeError(f"no {kind} at {text}")
        return path
    parse.__name__ = f"existing {kind}"
    return parse


def _writable(folder, text):
    """The nearest existing folder above (or at) ``folder`` must accept a file."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, so {text} cannot be "
                                         f"created")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"cannot write in {existing} ({err.strerror or err})") from None


def output_folder(text):
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    _writable(Path(text), text)
    return text


def output_file(text):
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    _writable(Path(text).parent, text)
    return text


def sample_output(text):
    if not text.endswith((".png", ".npz", "/")):
        raise argparse.ArgumentTypeError(f"must end in .png, .npz or / (a folder), "
                                         f"got {text!r}")
    return output_folder(text) if text.endswith("/") else output_file(text)
