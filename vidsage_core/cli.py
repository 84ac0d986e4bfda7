"""The ``vidsage`` command (also ``python -m vidsage_core``).

Each sub-command lives in the module that does the work; that module provides
``add_<name>_arguments(parser)`` and ``<name>_command(args) -> int``. Modules are imported only
when their command runs, so ``vidsage --help`` stays fast.

Expected errors (a missing or empty path, a corrupt or unsafe file, wrong dimensions, missing
labels, an unknown variant or object source) end as ONE line on stderr,
``vidsage <command>: error: <message naming the file or argument>``, and exit code 1 (2 for
bad arguments); ``--debug`` shows the traceback instead. Ctrl-C ends with one line and exit 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("vidsage_core.data", "read TFRecords, report counts, dimensions and bad records"),
    "run": ("vidsage_core.pipeline", "load -> split -> graph -> train -> embed -> evaluate"),
    "train": ("vidsage_core.train", "train a GNN on a prepared graph (works under torchrun)"),
    "ingest": ("vidsage_core.video", "decode videos, extract frame features and objects, write TFRecords"),
    "similar": ("vidsage_core.video", "nearest videos of a run's video (--id), or of new videos "
                                      "(a clip or a TFRecord) embedded with the trained run"),
}


# What a user can cause and fix (bad paths, files, values); anything else is a bug and keeps its
# traceback. KeyError covers unknown ids/names; UnicodeDecodeError is a ValueError.
EXPECTED_ERRORS = (OSError, ValueError, KeyError, ImportError)
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage stays under ``--help``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split()) or type(exc).__name__
    return text


def run_command_politely(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                         name: str, debug: bool = False) -> int:
    """Call a sub-command; expected errors become one stderr line and a non-zero exit code.

    Args:
        fn: ``<name>_command(args) -> int``.
        args: its parsed arguments.
        name: the command, for the message prefix.
        debug: re-raise instead (full traceback).

    Returns:
        fn's exit code, 1 for an expected error, 130 after Ctrl-C.
    """
    try:
        return int(fn(args) or 0)
    except KeyboardInterrupt as e:
        if debug:
            raise
        # train.TrainingInterrupted carries its checkpoint and train() already printed the line
        # "interrupted after step N; checkpoint in ...; continue with --resume".
        if getattr(e, "checkpoint", None) is None:
            print(f"vidsage {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED_ERRORS as e:
        if debug:
            raise
        print(f"vidsage {name}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vidsage",
        description="VidSage: unsupervised video representations with graph neural networks.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            getattr(module, f"add_{name}_arguments")(p)
            if not any("--debug" in a.option_strings for a in p._actions):
                p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help="show Python tracebacks of errors")
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
    return run_command_politely(getattr(module, f"{args.command}_command"), args, args.command,
                                bool(getattr(args, "debug", False)))


if __name__ == "__main__":
    raise SystemExit(main())
