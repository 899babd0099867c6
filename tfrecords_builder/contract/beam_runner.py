"""Running a Beam pipeline for a command: its options on the command line, their checks, one-line errors.

The builder (`python -m tfrecords_builder --runner beam`) and `python -m hsr_keras.predict --runner
beam` take the same runner options (`add_beam_options`, `beam_args`), check them before any
input is read (`check_pipeline_options`: an unknown runner or option, a bad value, what a remote
runner needs, in one line where Beam would warn, drop or print its usage) and run their pipeline
with a worker's bad input turned into one line (`run_pipeline`). Beam is imported inside the
functions: importing this module imports no Beam.
"""

import contextlib
import difflib
import importlib.util
import io
import logging
import re
from pathlib import Path

from tfrecords_builder.contract.errors import BuildError, InputError

# --runner: where a command's work runs. local: this machine; beam: an Apache Beam pipeline.
RUNNERS = ("local", "beam")

# Beam pipeline options a Dataflow, Flink or Spark user needs, named here so `--help` lists them; each one given
# goes to Beam as --name=value (Beam's own spelling). Any other Beam option: --beam-option KEY=VALUE, or as it is.
BEAM_OPTIONS = {
    "temp_location": "where the runner keeps temporary files and stages the package; DataflowRunner needs gs://BUCKET/PATH",
    "project": "Google Cloud project of a DataflowRunner job",
    "region": "Google Cloud region of a DataflowRunner job, e.g. us-central1",
    "setup_file": "the package for the workers: this repository's pyproject.toml (Beam builds its sdist with "
    "`python -m build`) or a setup.py",
    "requirements_file": "a requirements.txt the workers install",
    "sdk_container_image": "a worker container image with hsr-keras installed (no install on every worker start)",
    "num_workers": "workers to start with (DataflowRunner)",
    "max_num_workers": "the most workers autoscaling may use (DataflowRunner)",
    "environment_type": "how a portable runner (Flink, Spark) runs the Python workers: DOCKER, PROCESS, EXTERNAL",
    "environment_config": "the environment_type's setting, e.g. the container image for DOCKER",
    "job_endpoint": "host:port of a portable runner's job service (--beam-runner PortableRunner)",
}
INT_BEAM_OPTIONS = ("num_workers", "max_num_workers")


def add_beam_options(parser, title, runner_help):
    """--runner local|beam, --beam-runner and Beam's named options, for the builder and `predict` alike.

    `beam_args` turns what they parsed (and the options argparse did not know) into Beam's argv.
    """
    group = parser.add_argument_group(title)
    group.add_argument(
        "--runner",
        choices=RUNNERS,
        default="local",
        help=f"{runner_help}. Options this command does not know, e.g. --direct_num_workers=2 or Dataflow's "
        "--machine_type, go to Beam's PipelineOptions",
    )
    group.add_argument(
        "--beam-runner",
        default="DirectRunner",
        help="the Beam runner of --runner beam: DirectRunner (this machine), DataflowRunner (Google Cloud), "
        "FlinkRunner, SparkRunner, PortableRunner (a job service at --job_endpoint)",
    )
    for name, text in BEAM_OPTIONS.items():
        group.add_argument(f"--{name}", type=int if name in INT_BEAM_OPTIONS else str, help=f"Beam option: {text}")
    group.add_argument(
        "--beam-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other Beam pipeline option, given to Beam as --KEY=VALUE (KEY alone: a flag); may be repeated",
    )


def beam_args(args, unknown, parser):
    """Beam's argv of a `--runner beam` command line: the runner, the named options, --beam-option's, the rest."""
    if unknown and args.runner != "beam":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    named = [f"--{name}={getattr(args, name)}" for name in BEAM_OPTIONS if getattr(args, name) is not None]
    extra = []
    for item in args.beam_option:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key or any(c.isspace() for c in key):
            parser.error(f"--beam-option {item!r}: expected KEY=VALUE, e.g. machine_type=n1-standard-4")
        extra.append(f"--{key}={value}" if sep else f"--{key}")
    given = named + extra + list(unknown)
    if given and args.runner != "beam":
        parser.error(f"Beam pipeline options need --runner beam: {' '.join(given)}")
    return (f"--runner={args.beam_runner}", *given) if args.runner == "beam" else ()


def check_pipeline_options(beam_args):
    """Refuse in one line (`BuildError`) an unknown runner, an option Beam does not know, a value it cannot parse, or
    options the runner finds missing or wrong: Beam would warn and drop, print its usage, or fail after the reading."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.runner import create_runner

    options = PipelineOptions(list(beam_args))
    with _quiet_options_log():
        try:
            with contextlib.redirect_stderr(io.StringIO()) as usage:
                known = options.get_all_options(drop_default=True)
                given = options.get_all_options(drop_default=True, retain_unknown_options=True)
        except SystemExit:  # argparse's exit after printing the whole usage for a bad value
            said = usage.getvalue().strip().splitlines() or ["cannot be parsed"]
            raise BuildError(f"Beam pipeline options: {said[-1].split('error: ', 1)[-1]}") from None
        unknown = sorted(set(given) - set(known))
        if unknown:
            typed = next((a for a in beam_args if a.lstrip("-").split("=")[0].replace("-", "_") == unknown[0]), None)
            close = difflib.get_close_matches(unknown[0], options.get_all_options(), n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise BuildError(
                f"unknown Beam pipeline option {typed or '--' + unknown[0]}{hint}: Beam would ignore it; correct or "
                "remove it"
            )
        name = options.view_as(StandardOptions).runner
        _check_packaging(options, name)
        try:
            runner = create_runner(name)
        except (ValueError, ImportError) as err:
            raise BuildError(f"--beam-runner {name}: {' '.join(str(err).split())}") from None
        problems = PipelineOptionsValidator(options, runner).validate()  # e.g. Dataflow's region and temp_location
    if problems:
        shown = "; ".join(" ".join(problem.split()).rstrip(".") for problem in problems)
        raise BuildError(f"Beam pipeline options for {name}: {shown}")


def _check_packaging(options, runner):
    """What a remote runner needs before it can start a worker, in one line each: Beam finds these missing or wrong
    only after the launcher has read the inputs (or, for Dataflow's temp_location, lists them among others)."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions

    if runner in ("DataflowRunner", "TestDataflowRunner"):
        temp = options.view_as(GoogleCloudOptions).temp_location or ""
        if not temp.startswith("gs://"):
            given = f" (got {temp})" if temp else ""
            raise BuildError(
                f"--beam-runner {runner} needs --temp_location gs://BUCKET/PATH, where Dataflow stages the package and "
                f"keeps its temporary files{given}"
            )
    setup = options.view_as(SetupOptions)
    if setup.setup_file is not None:
        path = Path(setup.setup_file)
        if not path.is_file() or path.name not in ("setup.py", "pyproject.toml"):
            raise BuildError(
                f"--setup_file {setup.setup_file}: expected an existing setup.py or pyproject.toml, e.g. this "
                "repository's pyproject.toml"
            )
        if path.name == "pyproject.toml" and importlib.util.find_spec("build") is None:
            raise BuildError(
                f"--setup_file {setup.setup_file}: Beam builds its sdist with `python -m build`: pip install build"
            )
    if setup.requirements_file is not None and not Path(setup.requirements_file).is_file():
        raise BuildError(f"--requirements_file {setup.requirements_file}: no such file")


@contextlib.contextmanager
def _quiet_options_log():
    """Beam's warnings while options are checked (an unknown option, a GCS bucket it cannot make): errors here."""
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        beam_log.setLevel(level)


def run_pipeline(pipeline):
    """Run `pipeline` to its end; a worker's bad input (`OSError`, `InputError`) comes back as one, in one line."""
    try:
        pipeline.run().wait_until_finish()
    except Exception as err:
        one_line = _as_input_error(err)
        if one_line is err:
            raise
        raise one_line from err


def _as_input_error(err):
    """A worker's `OSError` or `InputError` as one, in one line (exit 2 by the console policy); others as they came."""
    if isinstance(err, (OSError, InputError)):
        return type(err)(STEP_SUFFIX.sub("", str(err)))
    found = WORKER_ERROR.findall(str(err))
    if not found:
        return err
    kind, message = found[-1]
    return OSError(message) if kind == "OSError" else BuildError(message)


# A worker's bad-input error (the builder's, or predict's PredictError) as Beam passes it on: the original exception (this process's
# workers) or a RuntimeError holding the worker's traceback (worker processes, Dataflow), both
# with " [while running '<step>']" appended.
WORKER_ERROR = re.compile(
    r"^(OSError|[\w.]*(?:BuildError|InputError|PredictError)): (.*?)(?: \[while running '[^']*'\])*$", re.M
)
STEP_SUFFIX = re.compile(r"(?: \[while running '[^']*'\])+$")
