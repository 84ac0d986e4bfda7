"""The ``vidsage`` command (also ``python -m vidsage_core``).

Each sub-command lives in the module that does the work; that module provides
``add_<name>_arguments(parser)`` and ``<name>_command(args) -> int``. Modules are imported only
when their command runs, so ``vidsage --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("vidsage_core.data", "read TFRecords, report counts, dimensions and bad records"),
    "run": ("vidsage_core.pipeline", "load -> split -> graph -> train -> embed -> evaluate"),
    "train": ("vidsage_core.train", "train a GNN on a prepared graph (works under torchrun)"),
    "ingest": ("vidsage_core.video", "decode videos, extract frame features and objects, write TFRecords"),
    "similar": ("vidsage_core.video", "embed one new video with a trained run and list its nearest videos"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidsage",
        description="VidSage: unsupervised video representations with graph neural networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            getattr(module, f"add_{name}_arguments")(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(getattr(module, f"{args.command}_command")(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
