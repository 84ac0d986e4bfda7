"""The artifact's set-up files agree with each other."""

import re
import subprocess
import sys

from vidsage_core import paths


def _pins(lines):
    return sorted(l.strip() for l in lines if re.match(r"^[A-Za-z0-9_.\-\[\]]+==", l.strip()))


def test_environment_yml_carries_the_same_pins_as_requirements():
    req = _pins(paths.ROOT.joinpath("requirements.txt").read_text().splitlines())
    env = _pins(l.strip().removeprefix("- ") for l in
                paths.ROOT.joinpath("environment.yml").read_text().splitlines())
    assert req and req == env


def test_torch_is_pinned_so_pip_never_pulls_a_cuda_build():
    req = paths.ROOT.joinpath("requirements.txt").read_text()
    assert re.search(r"^torch==\d", req, re.M)


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "vidsage_core", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("inspect", "run", "train", "ingest", "similar"):
        assert command in out


def test_ci_calls_the_readme_test_command():
    readme = paths.ROOT.joinpath("README.md").read_text()
    ci = paths.ROOT.joinpath(".ci", "run").read_text()
    assert "./reproduce.sh test" in readme and "./reproduce.sh test" in ci
