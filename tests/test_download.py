"""ERA5 download: requests, month splitting, resume, retries and the command, with a fake CDS client."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tfrecords_builder import __main__ as entry
from tfrecords_builder import download as dl
from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.synthetic import write_synthetic


def write_cds_netcdf(request, target, *, area=None, drop_last_day=False):
    """A small netCDF in the layout the 2024+ CDS delivers: netCDF4, `valid_time`, `pressure_level`
    descending, latitude descending, float32 variables named by their short names."""
    long_to_short = {long: short for short, long in dl.VARIABLES.items()}
    north, west, south, east = area or request["area"]
    year, month = int(request["year"][0]), int(request["month"][0])
    days = request["day"][:-1] if drop_last_day else request["day"]
    times = np.array([np.datetime64(f"{year:04d}-{month:02d}-{d}T{t[:2]}", "s") for d in days for t in request["time"]])
    lat = np.arange(north, south - 1e-9, -0.25)
    lon = np.arange(west, east + 1e-9, 0.25)
    rng = np.random.default_rng(0)
    coords = {"valid_time": times, "latitude": lat, "longitude": lon}
    if "pressure_level" in request:
        coords["pressure_level"] = np.array(sorted((float(p) for p in request["pressure_level"]), reverse=True))
        dims = ("valid_time", "pressure_level", "latitude", "longitude")
    else:  # single levels, named as in the CDS's netCDF: t2m, d2m for 2m_temperature, 2m_dewpoint_temperature
        long_to_short = {long: name for long, name in dl.SINGLE_LEVEL_VARIABLES.values()}
        dims = ("valid_time", "latitude", "longitude")
    shape = tuple(coords[d].size for d in dims)
    data = {long_to_short[v]: (dims, 280 + rng.random(shape, np.float32)) for v in request["variable"]}
    ds = xr.Dataset(
        data,
        coords=coords,
        attrs={"Conventions": "CF-1.7"},
    )
    encoding = {"valid_time": {"units": "seconds since 1970-01-01", "dtype": "int64"}}
    ds.to_netcdf(target, format="NETCDF4", encoding=encoding)


def write_cds_grib(request, target):
    """A GRIB2 file as the CDS delivers ERA5 (one message per time, level and variable), via ecCodes."""
    eccodes = pytest.importorskip("eccodes")
    long_to_short = {long: short for short, long in dl.VARIABLES.items()}
    north, west, south, east = request["area"]
    size = (round((north - south) / 0.25) + 1) * (round((east - west) / 0.25) + 1)
    grid = {
        "Ni": round((east - west) / 0.25) + 1,
        "Nj": round((north - south) / 0.25) + 1,
        "latitudeOfFirstGridPointInDegrees": north,
        "latitudeOfLastGridPointInDegrees": south,
        "longitudeOfFirstGridPointInDegrees": west,
        "longitudeOfLastGridPointInDegrees": east,
        "iDirectionIncrementInDegrees": 0.25,
        "jDirectionIncrementInDegrees": 0.25,
    }
    with open(target, "wb") as f:
        for day in request["day"]:
            for time in request["time"]:
                for level in request["pressure_level"]:
                    for variable in request["variable"]:
                        message = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
                        keys = {
                            "centre": "ecmf",
                            "dataDate": int(f"{request['year'][0]}{request['month'][0]}{day}"),
                            "dataTime": int(time[:2]) * 100,
                            "typeOfLevel": "isobaricInhPa",
                            "level": int(level),
                            "shortName": long_to_short[variable],
                            **grid,
                        }
                        for key, value in keys.items():
                            eccodes.codes_set(message, key, value)
                        eccodes.codes_set_values(message, np.linspace(0.0, 100.0, size))
                        eccodes.codes_write(message, f)
                        eccodes.codes_release(message)


class FakeClient:
    """cdsapi's `retrieve(dataset, request, target)`; fails as told before it writes a good file."""

    def __init__(self, failures=0, error=None, **write_options):
        self.calls, self.failures, self.write_options = [], failures, write_options
        self.error = error or RuntimeError("503 Service Unavailable")

    def retrieve(self, dataset, request, target):
        self.calls.append((dataset, request, target))
        if len(self.calls) <= self.failures:
            raise self.error
        if request["data_format"] == "grib":
            write_cds_grib(request, target)
        else:
            write_cds_netcdf(request, target, **self.write_options)


@pytest.fixture(autouse=True)
def _never_wait(monkeypatch):
    """A retry that a test did not plan for fails at once instead of sleeping for minutes."""
    monkeypatch.setattr(dl.time, "sleep", lambda seconds: pytest.fail(f"unexpected retry: sleep({seconds})"))


SMALL = {"area": (40.0, 110.0, 39.0, 111.0), "hours": (0, 12)}


def no_sleep(delays):
    """A sleep that only records how long it was asked to wait."""
    return delays.append


# ----------------------------------------------------------------------------- planning


def test_request_in_the_2024_cds_format():
    (month,) = dl.plan("out", start="2019-01-01", end="2019-01-31")
    assert month.request == {
        "product_type": ["reanalysis"],
        "variable": ["relative_humidity"],
        "year": ["2019"],
        "month": ["01"],
        "day": [f"{d:02d}" for d in range(1, 32)],
        "time": ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00"],
        "pressure_level": ["300"],
        "data_format": "netcdf",
        "download_format": "unarchived",
        "area": [52.75, 105.0, 37.0, 120.75],
    }
    assert str(month.target) == "out/era5_pl_r_300hPa_2019-01.nc"
    assert month.times.size == 31 * 8 and month.times[0] == np.datetime64("2019-01-01T00")


def test_names_short_long_repeated_and_comma_lists():
    (month,) = dl.plan(
        "out", variables=["t,q", "specific_humidity"], levels=["300", "250,200"], years=["2019"], data_format="grib"
    )[:1]
    assert month.request["variable"] == ["specific_humidity", "temperature"]
    assert month.request["pressure_level"] == ["200", "250", "300"]
    assert month.request["data_format"] == "grib"
    assert month.target.name == "era5_pl_q-t_200-250-300hPa_2019-01.grib"


def test_months_across_a_year_with_partial_months():
    months = dl.plan("out", start="2019-12-30", end="2020-03-02", hours=["0", "06:00"])
    assert [m.target.name for m in months] == [
        f"era5_pl_r_300hPa_{m}.nc" for m in ("2019-12", "2020-01", "2020-02", "2020-03")
    ]
    assert [m.request["day"] for m in (months[0], months[3])] == [["30", "31"], ["01", "02"]]
    assert len(months[1].request["day"]) == 31 and len(months[2].request["day"]) == 29  # 2020 is a leap year
    assert months[0].request["time"] == ["00:00", "06:00"]
    assert (
        months[0].times.tolist()
        == np.array(["2019-12-30T00", "2019-12-30T06", "2019-12-31T00", "2019-12-31T06"], "datetime64[h]").tolist()
    )


def test_years_as_list_and_range():
    assert len(dl.plan("out", years=["2019-2022"])) == 48
    months = dl.plan("out", years=["2021", "2019"])
    assert [m.request["year"][0] for m in months] == ["2019"] * 12 + ["2021"] * 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variables": ["humidity"]}, "unknown variable 'humidity'"),
        ({"levels": [310]}, "level 310 is not one of"),
        ({"levels": ["high"]}, "level 'high' is not a whole number"),
        ({"hours": [24]}, "hour 24 is not one of 0 to 23"),
        ({"area": (95, 105, 37, 120)}, "need -90 <= south < north <= 90"),
        ({"area": (37, 105, 52, 120)}, "need -90 <= south < north <= 90"),
        ({"area": (52, 120, 37, 105)}, "need -180 <= west < east <= 360"),
        ({"area": (52, -200, 37, 105)}, "need -180 <= west < east <= 360"),
        ({"start": "2019-02-01", "end": "2019-01-01", "years": None}, "start 2019-02-01 is after end 2019-01-01"),
        ({"start": "2019-02-30", "end": "2019-03-01", "years": None}, "start '2019-02-30' is not a date"),
        ({"years": ["2022-2019"]}, "end before they start"),
        ({"years": ["1900"]}, "year 1900 is not one of 1940 to "),
        ({"data_format": "zarr"}, "format 'zarr' is not one of netcdf, grib"),
        ({"start": "2019-01-01"}, "give either years or a start and an end date"),
    ],
)
def test_bad_input_is_one_error_before_any_work(tmp_path, kwargs, message):
    client = FakeClient()
    out = tmp_path / "era5"
    with pytest.raises(BuildError, match=message):
        dl.download(out, client=client, **{"years": ["2019"], **kwargs})
    assert client.calls == [] and not out.exists()


# ----------------------------------------------------------------------------- fetching and resuming


def test_downloads_checks_and_skips_complete_months(tmp_path):
    client = FakeClient()
    kwargs = {"start": "2019-01-30", "end": "2019-02-02", "variables": ["t", "q"], "levels": [250, 300], **SMALL}
    paths = dl.download(tmp_path, client=client, **kwargs)
    assert [p.name for p in paths] == ["era5_pl_q-t_250-300hPa_2019-01.nc", "era5_pl_q-t_250-300hPa_2019-02.nc"]
    assert all(
        dataset == dl.DATASET and files.TEMPORARY_RE.match(Path(target).name) for dataset, _, target in client.calls
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no temporary left
    months = dl.plan(tmp_path, **kwargs)
    assert [dl.problem(p, m) for p, m in zip(paths, months)] == [None, None]
    dl.download(tmp_path, client=client, **kwargs)
    assert len(client.calls) == 2  # the rerun fetched nothing


def test_partial_and_corrupt_files_are_replaced(tmp_path):
    months = dl.plan(tmp_path, start="2019-01-01", end="2019-03-31", **SMALL)
    write_cds_netcdf(months[0].request, months[0].target)  # complete
    write_cds_netcdf(months[1].request, months[1].target, drop_last_day=True)  # partial
    months[2].target.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # corrupt
    assert "holds 54 time steps, expected 56" in dl.problem(months[1].target, months[1])
    assert "cannot be read" in dl.problem(months[2].target, months[2])
    client = FakeClient()
    dl.download(tmp_path, client=client, start="2019-01-01", end="2019-03-31", **SMALL)
    assert [request["month"] for _, request, _ in client.calls] == [["02"], ["03"]]
    assert all(dl.problem(m.target, m) is None for m in months)


@pytest.mark.parametrize(
    "expected, message",
    [
        ({"area": (40.5, 110.0, 39.0, 111.0)}, "not the requested area"),
        ({"variables": ["t"]}, "lacks variable(s) t"),
        ({"levels": [250, 300]}, "holds levels [300], expected [250, 300]"),
        ({"hours": (0, 6, 12)}, "holds 4 time steps, expected 6"),
    ],
)
def test_a_file_that_differs_from_the_request_is_not_complete(tmp_path, expected, message):
    (written,) = dl.plan(tmp_path, start="2019-01-01", end="2019-01-02", **SMALL)
    write_cds_netcdf(written.request, written.target)
    (month,) = dl.plan(tmp_path, start="2019-01-01", end="2019-01-02", **{**SMALL, **expected})
    assert message in dl.problem(written.target, month)


def test_the_2024_cds_layout_of_the_synthetic_writer_passes_the_check(tmp_path):
    (path,) = write_synthetic(
        tmp_path, "2019-01-01", "2019-01-02", style="new", per="all", interval_hours=3,
        lat_bounds=(37.0, 52.75), lon_bounds=(105.0, 120.75), levels=(250, 300),
    )  # fmt: skip
    (month,) = dl.plan(tmp_path, start="2019-01-01", end="2019-01-02", levels=[250, 300])
    assert dl.problem(path, month) is None


@pytest.mark.parametrize("levels", [[300], [250, 300]])
def test_grib_downloads_are_checked_with_cfgrib(tmp_path, levels):
    """cfgrib names the axes time/isobaricInhPa and drops a single level to a scalar."""
    pytest.importorskip("cfgrib")
    kwargs = {"start": "2019-01-01", "end": "2019-01-02", "variables": ["r", "t"], "levels": levels, **SMALL}
    client = FakeClient()
    (path,) = dl.download(tmp_path, client=client, data_format="grib", **kwargs)
    assert path.suffix == ".grib" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no .idx files
    (month,) = dl.plan(tmp_path, data_format="grib", **{**kwargs, "hours": (0, 6, 12)})
    assert "holds 4 time steps, expected 6" in dl.problem(path, month)


def test_retries_with_exponential_backoff_then_succeeds(tmp_path):
    client, delays = FakeClient(failures=2), []
    (path,) = dl.download(
        tmp_path, client=client, start="2019-01-01", end="2019-01-01", base_delay_s=10, sleep=no_sleep(delays), **SMALL
    )
    assert len(client.calls) == 3 and delays == [10, 20]
    assert path.exists()


def test_a_bad_delivery_counts_as_a_failed_attempt(tmp_path):
    class WrongThenRight(FakeClient):
        def retrieve(self, dataset, request, target):
            self.calls.append(request)
            write_cds_netcdf(request, target, drop_last_day=len(self.calls) == 1)

    client, delays = WrongThenRight(), []
    dl.download(tmp_path, client=client, start="2019-01-01", end="2019-01-02", sleep=no_sleep(delays), **SMALL)
    assert len(client.calls) == 2 and len(delays) == 1


def test_retries_exhausted_keep_earlier_months(tmp_path):
    class FailsInFebruary(FakeClient):
        def retrieve(self, dataset, request, target):
            if request["month"] == ["02"]:
                raise RuntimeError("the request is\nqueued too long")
            super().retrieve(dataset, request, target)

    delays = []
    with pytest.raises(
        dl.DownloadFailed, match="2019-02.nc: failed after 3 attempt.s.: the request is queued too long"
    ):
        dl.download(
            tmp_path, client=FailsInFebruary(), start="2019-01-31", end="2019-02-01", attempts=3,
            base_delay_s=1, sleep=no_sleep(delays), **SMALL,
        )  # fmt: skip
    assert delays == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["era5_pl_r_300hPa_2019-01.nc"]


@pytest.mark.parametrize("attempts, delay", [(0, 1.0), (2.5, 1.0), (True, 1.0), (3, -1.0)])
def test_bad_retry_settings(tmp_path, attempts, delay):
    with pytest.raises(BuildError, match="attempts|delay"):
        dl.download(tmp_path / "out", client=FakeClient(), years=["2019"], attempts=attempts, base_delay_s=delay)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def fake_cdsapi(monkeypatch):
    """The command's client is a FakeClient; a test may put another in holder["client"]."""
    holder = {"client": FakeClient()}
    monkeypatch.setattr(dl, "_client", lambda: holder["client"])
    return holder


def test_command_downloads_and_prints_paths(tmp_path, fake_cdsapi, capsys):
    out = tmp_path / "era5"
    argv = ["download", "--out", str(out), "--start", "2019-01-01", "--end", "2019-01-02", "--variable", "r"]
    argv += [
        "--variable",
        "temperature",
        "--levels",
        "300",
        "250",
        "--area",
        "40",
        "110",
        "39",
        "111",
        "--hours",
        "0,12",
    ]
    assert entry.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "era5_pl_r-t_250-300hPa_2019-01.nc")]
    (call,) = fake_cdsapi["client"].calls
    assert call[1]["variable"] == ["relative_humidity", "temperature"] and call[1]["area"] == [40, 110, 39, 111]


def test_dry_run_prints_one_json_request_per_month_without_cdsapi(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cdsapi", None)  # importing it would fail
    out = tmp_path / "era5"
    assert dl.main(["--out", str(out), "--years", "2019", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    first = json.loads(lines[0])
    assert first["dataset"] == "reanalysis-era5-pressure-levels"
    assert first["request"] == dl.plan(out, years=["2019"])[0].request
    assert first["target"] == str(out / "era5_pl_r_300hPa_2019-01.nc")
    assert not out.exists()


def test_missing_cdsapi_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cdsapi", None)
    assert dl.main(["--out", str(tmp_path / "era5"), "--years", "2019"]) == 2
    assert capsys.readouterr().err == 'error: downloading needs cdsapi: pip install -e ".[download]"\n'
    assert not (tmp_path / "era5").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--variable", "rh"],
        ["--levels", "301"],
        ["--area", "52", "105", "-91", "120"],
        ["--area", "37", "105", "37", "120"],
        ["--attempts", "0"],
    ],
)
def test_command_bad_input_exits_2_before_any_work(tmp_path, monkeypatch, capsys, args):
    monkeypatch.setattr(dl, "_client", lambda: pytest.fail("the client must not be made for bad input"))
    out = tmp_path / "era5"
    assert dl.main(["--out", str(out), "--years", "2019", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_command_start_after_end_exits_2(tmp_path, capsys):
    assert dl.main(["--out", str(tmp_path / "x"), "--start", "2019-02-01", "--end", "2019-01-01"]) == 2
    assert capsys.readouterr().err == "error: start 2019-02-01 is after end 2019-01-01\n"


def test_command_exhausted_retries_exit_1_in_one_line(tmp_path, fake_cdsapi, capsys, monkeypatch):
    monkeypatch.setattr(dl.time, "sleep", lambda seconds: None)
    fake_cdsapi["client"] = FakeClient(failures=99, error=ConnectionError("connection reset\nby peer"))
    argv = ["--out", str(tmp_path), "--start", "2019-01-01", "--end", "2019-01-01", "--attempts", "2"]
    assert dl.main(argv) == 1
    err = capsys.readouterr().err
    assert err.endswith("error: era5_pl_r_300hPa_2019-01.nc: failed after 2 attempt(s): connection reset by peer\n")
    assert list(tmp_path.iterdir()) == []


def test_command_unwritable_folder_is_bad_input_in_one_line(read_only_folder, fake_cdsapi, capsys):
    fake_cdsapi["client"] = FakeClient()
    out = read_only_folder / "era5"
    assert dl.main(["--out", str(out), "--start", "2019-01-01", "--end", "2019-01-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(out) in err
    assert not out.exists()


def test_ctrl_c_exits_130_and_leaves_no_temporary(tmp_path, fake_cdsapi, capsys):
    fake_cdsapi["client"] = FakeClient(failures=1, error=KeyboardInterrupt())
    assert dl.main(["--out", str(tmp_path), "--start", "2019-01-01", "--end", "2019-01-01"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- 2 m relative humidity


def test_r2m_asks_the_single_levels_product_for_2m_temperature_and_dewpoint(tmp_path):
    client = FakeClient()
    paths = dl.download(
        tmp_path / "out", client=client, variables=["r2m"], start="2019-01-01", end="2019-01-01", **SMALL
    )
    ((dataset, request, _),) = client.calls
    assert dataset == "reanalysis-era5-single-levels"
    assert request["variable"] == ["2m_dewpoint_temperature", "2m_temperature"]
    assert "pressure_level" not in request and request["product_type"] == ["reanalysis"]
    assert [p.name for p in paths] == ["era5_sl_2d-2t_2019-01.nc"]
    again = FakeClient()  # complete: checked (t2m, d2m, times, area, no levels) and skipped
    dl.download(tmp_path / "out", client=again, variables=["r2m"], start="2019-01-01", end="2019-01-01", **SMALL)
    assert again.calls == []


def test_r2m_dry_run_shows_the_single_level_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cdsapi", None)
    out = tmp_path / "era5"
    assert (
        dl.main(["--out", str(out), "--start", "2019-01-01", "--end", "2019-01-02", "--variable", "r2m", "--dry-run"])
        == 0
    )
    (line,) = capsys.readouterr().out.splitlines()
    shown = json.loads(line)
    assert shown["dataset"] == "reanalysis-era5-single-levels" and "pressure_level" not in shown["request"]
    assert shown["request"]["variable"] == ["2m_dewpoint_temperature", "2m_temperature"]
    assert shown["target"] == str(out / "era5_sl_2d-2t_2019-01.nc") and not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--levels", "300"], "--levels 300: r2m is a single-level field"),
        (["--variable", "t"], "download it on its own"),
    ],
)
def test_r2m_with_levels_or_pressure_level_variables_is_one_line(tmp_path, capsys, argv, message):
    base = ["--out", str(tmp_path / "era5"), "--years", "2019", "--variable", "r2m", "--dry-run"]
    assert dl.main(base + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


# ----------------------------------------------------------------------------- the builder's predictors and static fields


def test_predictors_and_static_fields_are_fetched_per_level_and_the_invariant_fields_once(tmp_path):
    client = FakeClient()
    kwargs = {"start": "2019-01-31", "end": "2019-02-01", **SMALL}
    extras = {"predictors": ["t@300", "q@300", "r@300", "z@500", "2t", "sp"], "static": ["orography", "lsm", "latlon"]}
    paths = dl.download(tmp_path / "out", client=client, **kwargs, **extras)
    asked = [
        (dataset, request["variable"], request.get("pressure_level"), request["day"])
        for dataset, request, _ in client.calls
    ]
    pl, sl = "reanalysis-era5-pressure-levels", "reanalysis-era5-single-levels"
    assert asked == [
        (pl, ["relative_humidity"], ["300"], ["31"]),  # the target; r@300 is in it already
        (pl, ["relative_humidity"], ["300"], ["01"]),
        (sl, ["2m_temperature", "surface_pressure"], None, ["31"]),
        (sl, ["2m_temperature", "surface_pressure"], None, ["01"]),
        (pl, ["specific_humidity", "temperature"], ["300"], ["31"]),
        (pl, ["specific_humidity", "temperature"], ["300"], ["01"]),
        (pl, ["geopotential"], ["500"], ["31"]),
        (pl, ["geopotential"], ["500"], ["01"]),
        (sl, ["land_sea_mask", "geopotential"], None, ["31"]),  # once, one step
    ]
    assert client.calls[-1][1]["time"] == ["00:00"] and client.calls[-1][1]["month"] == ["01"]
    assert [p.name for p in paths][-1] == "era5_sl_invariant_lsm-z.nc"
    assert "era5_pl_q-t_300hPa_2019-02.nc" in {p.name for p in paths} and all(p.exists() for p in paths)
    again = FakeClient()  # every file complete: checked (variables, times, levels, area) and skipped
    dl.download(tmp_path / "out", client=again, **kwargs, **extras)
    assert again.calls == []


def test_dry_run_shows_every_request_of_predictors_and_static_fields(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cdsapi", None)
    argv = ["--out", str(tmp_path / "era5"), "--start", "2019-01-01", "--end", "2019-01-02", "--dry-run"]
    assert dl.main([*argv, "--predictors", "t@300", "msl", "--static", "lsm"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(s["dataset"][16:], s["request"]["variable"]) for s in shown] == [
        ("pressure-levels", ["relative_humidity"]),
        ("single-levels", ["mean_sea_level_pressure"]),
        ("pressure-levels", ["temperature"]),
        ("single-levels", ["land_sea_mask"]),
    ]
    assert shown[-1]["target"] == str(tmp_path / "era5" / "era5_sl_invariant_lsm.nc")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--predictors", "t@301"], "level 301 is not one of 1, 2, 3"),
        (["--predictors", "w2@300"], "--predictors w2@300: unknown variable 'w2'"),
        (["--predictors", "sp@300"], "--predictors sp@300: sp is a single-level field"),
    ],
)
def test_a_bad_predictor_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert dl.main(["--out", str(tmp_path / "era5"), "--years", "2019", "--dry-run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
