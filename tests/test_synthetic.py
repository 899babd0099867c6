"""Synthetic ERA5-like humidity as the CDS delivers it: dataset layout, argument checks, files, CLI.

The values themselves (determinism, realism) are tested in test_synthetic_fields.
"""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from tfrecords_builder import synthetic_fields
from tfrecords_builder.synthetic import main, synthetic_dataset, write_synthetic

SMALL = {"lat_bounds": (40.0, 45.0), "lon_bounds": (110.0, 115.0)}  # 21 x 21, for file and CLI tests


# ----------------------------------------------------------------------------- layout


def test_dataset_looks_like_a_classic_cds_download():
    ds = synthetic_dataset("2019-01-01", "2019-01-02", levels=(300, 250), interval_hours=6)
    assert ds.r.dims == ("time", "level", "latitude", "longitude")
    assert ds.r.shape == (8, 2, 81, 81) and ds.r.dtype == np.float32
    lat, lon = ds.latitude.values, ds.longitude.values
    assert lat[0] == 55.0 and lat[-1] == 35.0 and np.all(np.diff(lat) == -0.25)  # north first
    assert lon[0] == 103.0 and lon[-1] == 123.0 and np.all(np.diff(lon) == 0.25)
    assert list(ds.level.values) == [250, 300]
    assert ds.time.values[0] == np.datetime64("2019-01-01T00") and ds.time.values[-1] == np.datetime64("2019-01-02T18")
    assert ds.r.attrs == {"units": "%", "long_name": "Relative humidity", "standard_name": "relative_humidity"}
    assert ds.latitude.attrs["units"] == "degrees_north" and ds.longitude.attrs["units"] == "degrees_east"
    assert ds.level.attrs == {"units": "millibars", "long_name": "pressure_level"}
    assert ds.attrs["Conventions"] == "CF-1.6"
    assert "synthetic" in ds.attrs["history"].lower() and "seed=0" in ds.attrs["source"]
    # The paper region (37.0-52.75N, 105.0-120.75E, 64 x 64) lies inside the default box.
    assert ds.r.sel(latitude=slice(52.75, 37.0), longitude=slice(105.0, 120.75)).shape[2:] == (64, 64)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="end must not be before start"):
        synthetic_dataset("2019-01-02", "2019-01-01")
    with pytest.raises(ValueError, match="lat_bounds"):
        synthetic_dataset("2019-01-01", "2019-01-01", lat_bounds=(55.0, 35.0))
    with pytest.raises(ValueError, match="grid steps"):
        synthetic_dataset("2019-01-01", "2019-01-01", lat_bounds=(35.1, 36.0), resolution=0.5)
    with pytest.raises(ValueError, match="start must be a date"):
        synthetic_dataset("January", "2019-01-01")
    with pytest.raises(ValueError, match="seed"):
        synthetic_dataset("2019-01-01", "2019-01-01", seed=-1)
    with pytest.raises(ValueError, match="style"):
        write_synthetic("unused", "2019-01-01", "2019-01-01", style="grib")
    with pytest.raises(ValueError, match="per"):
        write_synthetic("unused", "2019-01-01", "2019-01-01", per="week")


# ----------------------------------------------------------------------------- files


def test_classic_files_are_int16_packed_netcdf3_as_cds_writes_them(tmp_path):
    paths = write_synthetic(tmp_path / "era5", "2019-01-31", "2019-02-01", levels=(300, 250), **SMALL)
    assert [p.name for p in paths] == ["era5_r_synthetic_2019-01.nc", "era5_r_synthetic_2019-02.nc"]
    expected = synthetic_dataset("2019-01-31", "2019-02-01", levels=(300, 250), **SMALL)
    for path in paths:
        with netCDF4.Dataset(path) as nc:
            assert nc.file_format == "NETCDF3_64BIT_OFFSET"
            nc.set_auto_maskandscale(False)
            packed = nc["r"][:]
            assert packed.dtype == np.int16 and packed.min() == -32766 and packed.max() == 32767
            assert nc["time"].units == "hours since 1900-01-01 00:00:00.0" and nc["time"].dtype == np.int32
        with xr.open_dataset(path) as ds:
            assert ds.r.dims == ("time", "level", "latitude", "longitude")
            assert ds.r.encoding["dtype"] == np.int16 and ds.r.encoding["_FillValue"] == -32767
            scale = ds.r.encoding["scale_factor"]
            assert "add_offset" in ds.r.encoding and 0 < scale < 0.01
            assert ds.latitude.values[0] > ds.latitude.values[-1] and list(ds.level.values) == [250, 300]
            assert ds.r.attrs["units"] == "%" and ds.attrs["Conventions"] == "CF-1.6"
            truth = expected.r.sel(time=ds.time).values
            np.testing.assert_allclose(ds.r.values, truth, atol=scale / 2 + 1e-4)


def test_new_style_files_are_netcdf4_with_valid_time_and_pressure_level(tmp_path):
    (path,) = write_synthetic(tmp_path, "2019-01-31", "2019-02-01", style="new", per="all", levels=(250, 300), **SMALL)
    assert path.name == "era5_r_synthetic_2019-01-31_2019-02-01.nc"
    with netCDF4.Dataset(path) as nc:
        assert nc.file_format == "NETCDF4"
    with xr.open_dataset(path) as ds:
        assert ds.r.dims == ("valid_time", "pressure_level", "latitude", "longitude")
        assert ds.r.dtype == np.float32 and ds.r.encoding["zlib"]
        assert ds.latitude.values[0] > ds.latitude.values[-1]
        assert ds.valid_time.values[0] == np.datetime64("2019-01-31T00") and ds.sizes["valid_time"] == 48
        assert ds.pressure_level.attrs["units"] == "hPa" and "number" in ds.coords and "expver" in ds.coords
        expected = synthetic_dataset("2019-01-31", "2019-02-01", levels=(250, 300), **SMALL).r
        np.testing.assert_array_equal(
            ds.r.transpose("valid_time", "pressure_level", ...).sel(pressure_level=[250, 300]).values, expected.values
        )


@pytest.mark.parametrize("style", ["classic", "new"])
def test_values_do_not_depend_on_how_files_are_split(tmp_path, style):
    kwargs = {"style": style, "interval_hours": 3, **SMALL}
    monthly = write_synthetic(tmp_path / "month", "2019-12-30", "2020-01-02", per="month", **kwargs)
    yearly = write_synthetic(tmp_path / "year", "2019-12-30", "2020-01-02", per="year", **kwargs)
    (single,) = write_synthetic(tmp_path / "all", "2019-12-30", "2020-01-02", per="all", **kwargs)
    assert len(monthly) == 2 and [p.name for p in yearly] == ["era5_r_synthetic_2019.nc", "era5_r_synthetic_2020.nc"]
    time = "time" if style == "classic" else "valid_time"
    with xr.open_dataset(single) as whole:
        reference, scale = whole.r.values, whole.r.encoding.get("scale_factor", 0.0)
    for paths in (monthly, yearly):
        parts = [xr.open_dataset(p) for p in paths]
        joined = xr.concat(parts, time)
        scales = [p.r.encoding.get("scale_factor", 0.0) for p in parts] + [scale]
        assert joined.sizes[time] == 32
        np.testing.assert_allclose(joined.r.values, reference, atol=max(scales) + 1e-4)
        for p in parts:
            p.close()


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    calls = []
    real_frames = synthetic_fields.Generator.frames

    def failing_frames(self, times, **kwargs):
        calls.append(len(times))
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return real_frames(self, times, **kwargs)

    monkeypatch.setattr(synthetic_fields.Generator, "frames", failing_frames)
    with pytest.raises(RuntimeError):
        write_synthetic(tmp_path, "2019-01-31", "2019-02-01", style="new", per="all", interval_hours=6, **SMALL)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- command line


def test_cli_writes_files_and_prints_them(tmp_path, capsys):
    out = tmp_path / "synthetic"
    args = [
        "--out",
        str(out),
        "--start",
        "2019-01-31",
        "--end",
        "2019-02-01",
        "--interval-hours",
        "6",
        "--lat-min",
        "40",
        "--lat-max",
        "45",
        "--lon-min",
        "110",
        "--lon-max",
        "115",
        "--levels",
        "250",
        "300",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out.split()
    files = sorted(out.glob("*.nc"))
    assert [f.name for f in files] == ["era5_r_synthetic_2019-01.nc", "era5_r_synthetic_2019-02.nc"]
    assert sorted(printed) == [str(f) for f in files]
    with xr.open_dataset(files[0]) as ds:
        assert ds.r.shape == (4, 2, 21, 21) and "seed=3" in ds.attrs["history"]


@pytest.mark.parametrize(
    "bad",
    [
        ["--start", "2019-02-01", "--end", "2019-01-01"],
        ["--lat-min", "50", "--lat-max", "40"],
        ["--lon-min", "120", "--lon-max", "110"],
        ["--start", "not-a-date"],
        ["--interval-hours", "0"],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, bad):
    assert main(["--out", str(tmp_path / "x"), *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_cli_rejects_unknown_style_and_documents_every_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--style", "grib"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--out",
        "--start",
        "--end",
        "--lat-min",
        "--lat-max",
        "--lon-min",
        "--lon-max",
        "--resolution",
        "--levels",
        "--interval-hours",
        "--seed",
        "--style",
        "--per",
    ):
        assert option in text
    assert "2019-01-01" in text and "default" in text
