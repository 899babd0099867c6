"""The Beam build for a remote runner: its options, its up-front refusals, Dataflow's job graph offline, Zarr input.

Nothing here reaches a network or Google Cloud. The Dataflow test runs DataflowRunner's own
translation (its overrides, side-input and combiner rewrites, the portable pipeline proto with
every transform pickled, the Docker environment, Dataflow's graph optimisation) with the
`dry_run` option; only `apiclient`, the module that talks to the Dataflow service (it needs
apache-beam[gcp]), is replaced by a stub that keeps the job it is given.
"""

import importlib.util
import sys
import types

import apache_beam as beam
import pytest
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions
from apache_beam.portability.api import beam_runner_api_pb2
from era5_stores import open_sample, write_arco_zarr
from test_beam import SAMPLE, assert_same_build, build

from tfrecords_builder import beam_pipeline
from tfrecords_builder import build as build_module
from tfrecords_builder.build import check_build, main
from tfrecords_builder.contract import beam_runner
from tfrecords_builder.options import parse_args

DATAFLOW = ["--runner", "beam", "--beam-runner", "DataflowRunner", "--project", "my-project"]
DATAFLOW += ["--region", "us-central1", "--temp_location", "gs://my-bucket/tmp"]
TWO_LEVELS = SAMPLE[: SAMPLE.index("--levels") + 1] + ["300", "350"] + SAMPLE[SAMPLE.index("--train") :]


def one_line(err):
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_named_beam_options_and_beam_option_go_to_beam_in_beams_spelling(capsys):
    config = parse_args(
        ["x.nc", "--out", "o", *DATAFLOW, "--num_workers", "4", "--max_num_workers", "8"]
        + ["--sdk_container_image", "img:1", "--beam-option", "machine_type=n1-standard-4"]
        + ["--beam-option=--save_main_session", "--experiments=use_runner_v2"]
    )
    assert config.beam_args == (
        "--runner=DataflowRunner",
        "--temp_location=gs://my-bucket/tmp",
        "--project=my-project",
        "--region=us-central1",
        "--sdk_container_image=img:1",
        "--num_workers=4",
        "--max_num_workers=8",
        "--machine_type=n1-standard-4",
        "--save_main_session",
        "--experiments=use_runner_v2",
    )
    assert config.region_name is None  # --region was once taken for an abbreviation of --region-name
    with pytest.raises(SystemExit):
        parse_args(["x.nc", "--out", "o", "--project", "p"])
    assert "Beam pipeline options need --runner beam: --project=p" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["x.nc", "--out", "o", "--runner", "beam", "--beam-option", "=3"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        ([], "--beam-runner DataflowRunner needs --temp_location gs://BUCKET/PATH, where Dataflow stages"),
        (["--temp_location", "/tmp/x"], "keeps its temporary files (got /tmp/x)"),
        (["--temp_location", "gs://my-bucket/t", "--setup_file", "nowhere/setup.py"], "--setup_file nowhere/setup.py:"),
        (
            ["--temp_location", "gs://my-bucket/t", "--requirements_file", "no.txt"],
            "--requirements_file no.txt: no such",
        ),
    ],
)
def test_dataflow_without_what_it_needs_is_one_line_before_any_input_is_read(
    tmp_path, monkeypatch, capsys, options, message
):
    monkeypatch.setattr(build_module, "open_source", pytest.fail)
    monkeypatch.setattr(beam_pipeline, "open_source", pytest.fail)
    out = tmp_path / "out"
    argv = [str(tmp_path / "absent.nc"), "--out", str(out), "--quiet", "--runner", "beam"]
    argv += ["--beam-runner", "DataflowRunner", "--project", "my-project", "--region", "us-central1", *options]
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize(
    "runner, message",
    [
        (["--runner", "local"], "gs:// needs gcsfs: pip install hsr-keras[gcs]"),
        (["--runner", "beam"], "gs:// needs gcsfs: pip install hsr-keras[gcs]"),
        (
            DATAFLOW,
            "--out gs://my-bucket/era5 with --beam-runner DataflowRunner: a bucket output is staged on this machine, "
            "which the workers cannot write; use DirectRunner, or --out a folder every worker mounts and copy it to "
            "the bucket",
        ),
    ],
)
def test_a_bucket_out_is_refused_up_front_without_gcsfs_or_on_a_remote_runner(
    tmp_path, monkeypatch, capsys, runner, message
):
    # a bucket --out needs gcsfs, not installed with [dev] (tests/test_remote.py builds to memory:// URLs)
    if runner != DATAFLOW and importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HSR_KERAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build_module, "open_source", pytest.fail)
    assert main(["absent.nc", "--out", "gs://my-bucket/era5", "--quiet", *runner]) == 2
    assert one_line(capsys.readouterr().err) == f"error: {message}\n"
    assert list(tmp_path.iterdir()) == []  # no ./gs:/my-bucket/era5, no staging folder


@pytest.fixture
def dataflow_service_stub(monkeypatch):
    """`apiclient` as DataflowRunner imports it: `Job` keeps the options and the pipeline proto, nothing is sent."""
    stub = types.ModuleType("apache_beam.runners.dataflow.internal.apiclient")

    class Job:
        def __init__(self, options, proto_pipeline):
            self.options, self.proto = options, proto_pipeline

    stub.Job = Job
    stub.get_container_image_from_options = lambda options: options.view_as(WorkerOptions).sdk_container_image
    import apache_beam.runners.dataflow.internal as internal

    monkeypatch.setitem(sys.modules, stub.__name__, stub)
    monkeypatch.setattr(internal, "apiclient", stub, raising=False)
    return stub


def test_the_dataflow_job_graph_is_built_offline_with_every_step_and_the_container(
    real_era5, tmp_path, dataflow_service_stub
):
    argv = [str(real_era5), "--out", str(tmp_path / "out"), *TWO_LEVELS, *DATAFLOW, "--num_workers", "2"]
    argv += [
        "--max_num_workers",
        "4",
        "--sdk_container_image",
        "example.org/hsr-keras:0.1.0",
        "--beam-option",
        "dry_run=True",
    ]
    config = parse_args(argv)
    beam_runner.check_pipeline_options(config.beam_args)  # Beam's validator for Dataflow: project, region, gs://
    plan = beam_pipeline.plan_build(check_build(config))
    result = beam_pipeline.make_pipeline(PipelineOptions(list(config.beam_args)), plan).run()
    assert result.state == beam.runners.runner.PipelineState.DONE  # dry run: translated, not submitted
    proto = result.job.proto
    transforms = proto.components.transforms
    names = {t.unique_name for t in transforms.values()}
    assert {"Inputs", "Checksums", "Shards", "Spread", "Write shards", "Totals", "Publish"} <= names
    (environment,) = proto.components.environments.values()
    assert environment.urn == "beam:env:docker:v1"
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == (
        "example.org/hsr-keras:0.1.0"
    )
    write = next(t for t in transforms.values() if t.unique_name == "Write shards")
    payload = beam_runner_api_pb2.ParDoPayload.FromString(write.spec.payload)
    do_fn = pickler.loads(payload.do_fn.payload)[0]  # as a worker unpickles it
    assert isinstance(do_fn, beam_pipeline.WriteShard)
    assert do_fn.inputs == [real_era5.resolve()] and do_fn.out_dir == tmp_path / "out"
    options = result.job.options.get_all_options()
    assert (options["num_workers"], options["max_num_workers"], options["region"]) == (2, 4, "us-central1")
    assert not (tmp_path / "out").exists()  # planning reads the inputs, never the output


def test_an_arco_zarr_store_builds_the_same_bytes_on_beam(real_era5, tmp_path):
    store = write_arco_zarr(tmp_path / "era5.zarr", open_sample(real_era5))
    local = build(store, tmp_path / "local", *TWO_LEVELS)
    on_beam = build(store, tmp_path / "beam", *TWO_LEVELS, "--runner", "beam", "--direct_num_workers=2")
    assert local["sources"] == [{"path": str(store.resolve()), "format": "zarr"}]
    assert local["splits"]["train"]["examples"] == 32
    assert_same_build(local, on_beam, tmp_path / "local", tmp_path / "beam")
