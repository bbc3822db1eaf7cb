"""The command line of vaetone: ``python -m vaetone COMMAND ...`` (or the ``vaetone`` script).

Commands:
    data-check PATH   check an NSynth-format split folder (or a folder of the three official
                      ones); print one JSON line
                      ``{"loaded": N, "skipped": [{"note": NAME, "reason": TEXT}, ...]}``.
    prepare [PARAMS]  read or render the notes and compute their features into the cache the
                      chapters use; print one JSON line ``{"notes", "skipped", "splits",
                      "instruments", "features", "seconds"}``.
    train [PARAMS]    prepare if needed, then train (or resume, or load) the run the chapters use;
                      print one JSON line ``{"run", "epochs", "notes_per_s", "world_size", "device"}``.
                      Under ``torchrun`` it trains with DistributedDataParallel.

PARAMS take papermill's syntax (:func:`parameters`): ``-f FILE.yaml`` (repeatable), ``-y YAML``,
``-p NAME VALUE`` (typed as papermill types it), ``-r NAME VALUE`` (raw text). Bad input ends
with one line on stderr and exit status 1, never a traceback. Progress bars show on a terminal
only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence

import yaml

from vaetone.errors import ConfigError, VaetoneError

EXIT_OK = 0
EXIT_UNUSABLE = 1
EXIT_NOTHING_LOADED = 3
EXIT_INTERRUPTED = 130

_PARAMS_EPILOG = """\
parameters (papermill's syntax; applied in this order, a later value wins: every -f, then
every -y, then every -p, then every -r; what is not given keeps its default):
  -f FILE.yaml     a parameters file such as params/ci.yaml (repeatable)
  -y YAML          parameters as YAML text, e.g. -y "{velocities: [25, 127], epochs: 5}"
  -p NAME VALUE    one parameter, typed as papermill types it: an integer, a float, True,
                   False or None, else text; a value in brackets is read as a YAML list:
                   -p velocities "[25, 127]"  -p soundfonts "[/a/FluidR3_GM.sf2, /b/TimGM6mb.sf2]"
  -r NAME VALUE    one parameter as raw text, never converted
Unknown names and bad values stop before any work, with one line on stderr and exit status 1.
The same parameters give the same caches as the chapters (data/, runs/; VAETONE_DATA, VAETONE_RUNS).
"""

_TRAIN_EPILOG = (
    _PARAMS_EPILOG
    + """
torchrun: `torchrun --standalone --nproc_per_node=N -m vaetone train -f params/corpus.yaml`
trains one model on N processes with DistributedDataParallel (nccl on CUDA, one GPU per
process; gloo on the CPU). batch_size is the global batch: each of the N ranks computes
batch_size / N notes of every batch, so batch_size must be divisible by N, and N may not
exceed the train batches of an epoch. The first rank of each node prepares the data (the
others wait); rank 0 writes the checkpoints and prints the JSON line. A killed job resumes
from its last finished epoch with the same command.

exit status: 0 trained (or already trained); 1 bad parameters, data, checkpoint, divergence or
torchrun setup (the reason is on stderr); 2 wrong command-line arguments; 130 interrupted (the
last finished epoch is kept: rerun the same command to resume).
"""
)

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
    from vaetone.data.dataset import check_nsynth

    try:
        report = check_nsynth(
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


def typed_value(text: str):
    """A ``-p`` value typed as papermill types it, plus lists: ``"[25, 127]"`` → ``[25, 127]``.

    Args:
        text: the value as given on the command line.
    Returns:
        True, False or None for "True", "False", "None"; an int or a float where ``int()`` or
        ``float()`` accepts the text; the YAML value of a text in brackets; else the text itself.
    Raises:
        ConfigError: a bracketed value that is not YAML.
    """
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.strip().startswith("["):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"the value {text!r} is not a YAML list ({str(exc).splitlines()[0]})") from None
    return text


def _mapping(text: str, where: str) -> dict:
    """A YAML mapping of parameters from ``text`` (a file's content or a -y value)."""
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where} must hold a mapping of name: value, not {type(params).__name__}")
    return params


def parameters(
    files: Sequence[str] = (),
    yamls: Sequence[str] = (),
    typed: Sequence[Sequence[str]] = (),
    raw: Sequence[Sequence[str]] = (),
) -> dict:
    """The parameters of ``-f``, ``-y``, ``-p`` and ``-r`` merged in papermill's order (a later one wins).

    Args:
        files: YAML parameter files; yamls: YAML texts; typed: ``(name, value)`` pairs typed by
            :func:`typed_value`; raw: ``(name, value)`` pairs kept as text.
    Returns:
        ``{name: value}`` for ``vaetone.config.make``.
    Raises:
        ConfigError: a file is unreadable or not a mapping, a YAML text is invalid.
    """
    params: dict = {}
    for path in files:
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as exc:
            raise ConfigError(f"cannot read parameters file {path}: {exc.strerror or exc}") from None
        params.update(_mapping(text, f"parameters file {path}"))
    for text in yamls:
        params.update(_mapping(text, f"-y {text!r}"))
    for name, value in typed:
        params[name] = typed_value(value)
    for name, value in raw:
        params[name] = value
    return params


def _config(args: argparse.Namespace):
    """The checked Config of the parsed ``-f/-y/-p/-r`` options."""
    from vaetone import config

    return config.make(**parameters(args.parameters_file, args.parameters_yaml, args.parameters, args.parameters_raw))


@contextlib.contextmanager
def _progress_env(show: bool) -> Iterator[None]:
    """Silence every progress bar (``VAETONE_PROGRESS=0``) for the block unless ``show``."""
    old = os.environ.get("VAETONE_PROGRESS")
    if not show:
        os.environ["VAETONE_PROGRESS"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("VAETONE_PROGRESS", None)
        else:
            os.environ["VAETONE_PROGRESS"] = old


def _prepare(args: argparse.Namespace) -> int:
    """Run ``prepare``: cache the notes and features of the parameters, print the report as one JSON line."""
    from vaetone.spectral.prepare import prepare

    cfg = _config(args)
    with _progress_env(sys.stderr.isatty()):
        report = prepare(cfg)
    print(json.dumps(report, default=_jsonable))
    return EXIT_OK


def _throughput(rows: list[dict]) -> float | None:
    """Notes per second over the epochs trained now: their notes over their training seconds (None: none)."""
    if not rows:
        return None
    return round(len(rows) / sum(1.0 / row["notes_per_s"] for row in rows), 1)


def _train(args: argparse.Namespace) -> int:
    """Run ``train`` (alone or as one torchrun rank): prepare, train or resume, print the JSON line on rank 0."""
    from vaetone.devices import resolve_device
    from vaetone.model import distributed
    from vaetone.model.runs import trained_model
    from vaetone.model.train import COMPILE_ENV
    from vaetone.spectral.features import load_features

    ranks = distributed.from_env()
    cfg = _config(args)
    device = resolve_device(cfg)
    backend = distributed.backend_for(device, ranks, args.backend) if ranks.world_size > 1 else None
    distributed.check_batches(0, cfg.batch_size, ranks.world_size)
    if args.compile:
        os.environ[COMPILE_ENV] = "1"
    trained: list[dict] = []
    show = ranks.main and sys.stderr.isatty()
    with _progress_env(show), distributed.process_group(ranks, backend, device):
        with distributed.node_first():  # one rank per node computes the features, the others then load them
            features = load_features(cfg)
        run = trained_model(cfg, features, progress=show, callback=lambda epoch, row: trained.append(row))
    if ranks.main:
        report = {
            "run": str(run.path),
            "epochs": len(run.history),
            "notes_per_s": _throughput(trained),
            "world_size": ranks.world_size,
            "device": device.type,
        }
        print(json.dumps(report))
    return EXIT_OK


def _jsonable(obj):
    """JSON fallback of the reports (numpy numbers, paths)."""
    from vaetone.store import jsonable

    return jsonable(obj)


def _guarded(command: str, func):
    """``func(args)`` with the package's errors as one line on stderr (exit 1) and Ctrl-C as exit 130."""

    def run(args: argparse.Namespace) -> int:
        rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
        who = f"vaetone {command}" + (f" (rank {rank})" if rank != "0" else "")
        try:
            return func(args)
        except VaetoneError as exc:
            print(f"{who}: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return EXIT_UNUSABLE
        except KeyboardInterrupt:
            print(f"{who}: interrupted; finished work is kept, rerun the same command to continue", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run


def _add_parameters(parser: argparse.ArgumentParser) -> None:
    """The papermill-style parameter options of ``prepare`` and ``train``."""
    options = {"action": "append", "default": []}
    parser.add_argument(
        "-f", "--parameters_file", "--parameters-file", metavar="FILE.yaml", help="a parameters file", **options
    )
    parser.add_argument("-y", "--parameters_yaml", "--parameters-yaml", metavar="YAML", help="YAML text", **options)
    parser.add_argument(
        "-p", "--parameters", nargs=2, metavar=("NAME", "VALUE"), help="one parameter, typed", **options
    )
    parser.add_argument(
        "-r",
        "--parameters_raw",
        "--parameters-raw",
        nargs=2,
        metavar=("NAME", "VALUE"),
        help="one parameter, as text",
        **options,
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log to stderr")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m vaetone", description="Tools of the vaetone book (a convolutional VAE of instrument tones)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "data-check",
        help="check an NSynth-format split folder, or a folder of the three official ones",
        description="Check every note of an NSynth-format split folder (examples.json and "
        "audio/<note_str>.wav, 4 s, 16 kHz, mono) and print one JSON line: "
        '{"loaded": N, "skipped": [{"note": NAME, "reason": TEXT}, ...]}. Given a folder holding '
        "nsynth-train/, nsynth-valid/ and nsynth-test/, it checks all three: each skipped note "
        'also names its "folder", and "folders" gives the counts per folder.',
        epilog=_DATA_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", help="the split folder, e.g. ~/data/nsynth/nsynth-test, or ~/data/nsynth")
    check.add_argument("--strict", action="store_true", help="fail on the first broken note")
    check.add_argument("--resample", action="store_true", help="accept other sample rates (resampled to 16 kHz)")
    check.add_argument("--mix-to-mono", action="store_true", help="accept several channels (averaged to mono)")
    check.add_argument(
        "--normalise", action="store_true", help="scale notes whose samples leave [-1, 1] to a peak of 1"
    )
    check.set_defaults(func=_data_check)

    prep = commands.add_parser(
        "prepare",
        help="read or render the notes and cache their features",
        description="Read or render the notes of the parameters and compute their log-mel features into the "
        "cache the chapters use. Prints one JSON line: "
        '{"notes", "skipped", "splits": {"train", "valid", "test"}, "instruments": {...}, "features", "seconds"}.',
        epilog=_PARAMS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_parameters(prep)
    prep.set_defaults(func=_guarded("prepare", _prepare))

    train = commands.add_parser(
        "train",
        help="train the model of the parameters (resumably; torchrun for several GPUs)",
        description="Prepare the data if needed, then train the run of the parameters (the one chapter 03 uses), "
        "resuming an interrupted run and loading a finished one. Prints one JSON line: "
        '{"run": FOLDER, "epochs": TRAINED IN TOTAL, "notes_per_s": THROUGHPUT OF THIS INVOCATION (null: nothing '
        'left to train), "world_size": RANKS, "device": "cpu"|"cuda"}.',
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_parameters(train)
    train.add_argument(
        "--backend",
        choices=("auto", "nccl", "gloo"),
        default="auto",
        help="torchrun's process-group backend (auto: nccl on CUDA, gloo on the CPU)",
    )
    train.add_argument("--compile", action="store_true", help="train through torch.compile (CUDA only)")
    train.set_defaults(func=_guarded("train", _train))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the command and return its exit status."""
    args = build_parser().parse_args(argv)
    quiet_rank = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(
        level=logging.INFO if args.verbose and not quiet_rank else logging.ERROR,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
