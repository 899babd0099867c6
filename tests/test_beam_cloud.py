"""The Beam build for a remote runner: its options, its up-front refusals, Dataflow's job graph offline, Zarr input.

Nothing here reaches a network or Google Cloud. The Dataflow test runs DataflowRunner's own
translation (its overrides, side-input and combiner rewrites, the portable pipeline proto with
every transform pickled, the Docker environment, Dataflow's graph optimisation) with the
`dry_run` option; only `apiclient`, the module that talks to the Dataflow service (it needs
apache-beam[gcp]), is replaced by a stub that keeps the job it is given.
"""

import pytest
from test_beam import SAMPLE

from tfrecords_builder import beam_pipeline
from tfrecords_builder import build as build_module
from tfrecords_builder.build import main
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


@pytest.mark.parametrize("runner", [["--runner", "local"], ["--runner", "beam"], DATAFLOW])
def test_a_bucket_out_is_refused_up_front_by_every_runner(tmp_path, monkeypatch, capsys, runner):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build_module, "open_source", pytest.fail)
    assert main(["absent.nc", "--out", "gs://my-bucket/era5", "--quiet", *runner]) == 2
    err = one_line(capsys.readouterr().err)
    assert err == (
        "error: --out gs://my-bucket/era5: writing the build to a bucket or URL is not supported yet (shards and manifest are "
        "published by renames in a folder); write to a local or mounted folder and copy it, e.g. gcloud storage cp -r\n"
    )
    assert list(tmp_path.iterdir()) == []  # no ./gs:/my-bucket/era5
