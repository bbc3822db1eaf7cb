"""The command line of vaetone: ``python -m vaetone COMMAND ...`` (or the ``vaetone`` script).

Commands:
    data-check PATH   check an NSynth-format split folder; print one JSON line
                      ``{"loaded": N, "skipped": [{"note": NAME, "reason": TEXT}, ...]}``.

New commands are added in :func:`build_parser` as further sub-parsers, each with a ``func``
that takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from vaetone.errors import VaetoneError

EXIT_OK = 0
EXIT_UNUSABLE = 1
EXIT_NOTHING_LOADED = 3

_DATA_CHECK_EPILOG = f"""\
exit status:
  {EXIT_OK}  at least one note loaded (broken notes are listed under "skipped")
  {EXIT_UNUSABLE}  the folder is unusable: missing, no or invalid examples.json, an entry
     missing a field (or, with --strict, a broken note); the reason is on stderr
  2  wrong command-line arguments
  {EXIT_NOTHING_LOADED}  examples.json is fine but no note could be loaded
"""


def _data_check(args: argparse.Namespace) -> int:
    """Run ``data-check``: print the JSON report on stdout, errors on stderr; return the exit status."""
    from vaetone.data.nsynth import data_check

    try:
        report = data_check(
            args.path,
            strict=args.strict,
            resample=args.resample,
            mix_to_mono=args.mix_to_mono,
            normalise=args.normalise,
        )
    except VaetoneError as exc:
        print(f"vaetone data-check: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(json.dumps(report))
    if report["loaded"] == 0:
        print(
            f"vaetone data-check: error: no note of {args.path} could be loaded "
            f"({len(report['skipped'])} skipped; see their reasons in the JSON above)",
            file=sys.stderr,
        )
        return EXIT_NOTHING_LOADED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m vaetone", description="Tools of the vaetone book (a convolutional VAE of instrument tones)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "data-check",
        help="check an NSynth-format split folder",
        description="Check every note of an NSynth-format split folder (examples.json and "
        "audio/<note_str>.wav, 4 s, 16 kHz, mono) and print one JSON line: "
        '{"loaded": N, "skipped": [{"note": NAME, "reason": TEXT}, ...]}.',
        epilog=_DATA_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", help="the split folder, e.g. ~/data/nsynth-test")
    check.add_argument("--strict", action="store_true", help="fail on the first broken note")
    check.add_argument("--resample", action="store_true", help="accept other sample rates (resampled to 16 kHz)")
    check.add_argument("--mix-to-mono", action="store_true", help="accept several channels (averaged to mono)")
    check.add_argument(
        "--normalise", action="store_true", help="scale notes whose samples leave [-1, 1] to a peak of 1"
    )
    check.set_defaults(func=_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the command and return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
