"""Faults of units and values: levels in Pa, other units of t, q and r, fields that cannot be relative humidity.

Each case is read in its own units and converted, or refused in one line (exit 2) naming the
variable and the file, before anything is written; a field that is not plausible relative
humidity stops the build unless --allow-implausible is given.
"""

import json

import numpy as np
import pytest
import xarray as xr
from era5_samples import LAT, LON, REGION_ARGS, SPLIT_ARGS, hourly, known_values, write_era5
from test_build import SAMPLE_ARGS, SAMPLE_SPLITS, run
from test_faults_files import one_error_line

from tfrecords_builder.build import main
from tfrecords_builder.contract.era5.humidity import implausibility


def build(inputs, out, *extra, region=SAMPLE_ARGS, splits=SAMPLE_SPLITS):
    """Exit status of a build, by default of the real sample's region and day (`test_build.SAMPLE_ARGS`)."""
    argv = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return main([*argv, "--out", str(out), *region, *splits, "--quiet", *extra])


def stats(out):
    return json.loads((out / "manifest.json").read_text())["stats"]


@pytest.fixture
def tq(real_era5, tmp_path):
    """Temperature and specific humidity of the real ERA5 sample, levels in hPa: r is derived from them."""
    with xr.open_dataset(real_era5) as ds:
        ds = ds[["t", "q"]].load()
    path = tmp_path / "tq.nc"
    ds.to_netcdf(path)
    return ds, path


def levels_in_pa(ds, units="Pa"):
    """The dataset with its levels in Pa (30000 for 300 hPa), as some files carry them."""
    pa = ds.assign_coords(level=ds["level"] * 100)
    pa["level"].attrs = {"units": units} if units else {}
    return pa


def test_levels_in_pa_are_read_as_pa(tq, tmp_path, capsys):
    """The issue's bug: t and q on levels in Pa gave RH 100x too high (mean 7,809 %) and exit 0."""
    ds, hpa = tq
    assert build(hpa, tmp_path / "hpa") == 0
    levels_in_pa(ds).to_netcdf(tmp_path / "pa.nc")
    assert build(tmp_path / "pa.nc", tmp_path / "pa") == 0
    assert stats(tmp_path / "pa") == stats(tmp_path / "hpa")
    assert 20 < stats(tmp_path / "pa")["mean"] < 100
    # Asked in Pa, as the old code needed: the levels are hPa now, and the message lists them.
    assert build(tmp_path / "pa.nc", tmp_path / "asked-in-pa", "--levels", "30000") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "level 30000 hPa is not in" in line and "(it has 100, 125, 150" in line
    assert not (tmp_path / "asked-in-pa").exists()


def test_levels_that_cannot_be_hpa_need_units(tq, tmp_path, capsys):
    ds, _ = tq
    levels_in_pa(ds, units=None).to_netcdf(tmp_path / "no-units.nc")
    assert build(tmp_path / "no-units.nc", tmp_path / "out", "--levels", "25000", "30000") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no-units.nc go up to 35000 and have no units attribute: they cannot be hPa" in line
    assert not (tmp_path / "out").exists()


def test_levels_whose_units_lie_give_implausible_rh(tq, tmp_path, capsys):
    """Pa values labelled hPa: the derived RH is 100x too high, and the plausibility check says so."""
    ds, _ = tq
    levels_in_pa(ds, units="hPa").to_netcdf(tmp_path / "lying.nc")
    assert build(tmp_path / "lying.nc", tmp_path / "out", "--levels", "25000", "30000") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "r at 25000 hPa on 2022-11-11 is not plausible relative humidity: 100.0% of its values lie outside" in line
    assert "-1..130 %RH" in line and "pass --allow-implausible to build anyway" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "variable, units, convert",
    [
        ("q", "g kg**-1", lambda q: q * 1000.0),
        ("q", "g/kg", lambda q: q * 1000.0),
        ("t", "degC", lambda t: t - 273.15),
        ("t", "°C", lambda t: t - 273.15),
    ],
)
def test_t_and_q_in_other_units_are_converted(tq, tmp_path, variable, units, convert):
    ds, hpa = tq
    assert build(hpa, tmp_path / "reference") == 0
    other = ds.copy()
    other[variable] = convert(ds[variable]).assign_attrs(units=units)
    other.to_netcdf(tmp_path / "other.nc")
    assert build(tmp_path / "other.nc", tmp_path / "out") == 0
    for key, value in stats(tmp_path / "reference").items():
        assert stats(tmp_path / "out")[key] == pytest.approx(value, rel=1e-5, abs=1e-9), key


def test_relative_humidity_as_a_fraction_is_converted(real_era5, tmp_path):
    assert build(real_era5, tmp_path / "percent") == 0
    with xr.open_dataset(real_era5) as ds:
        fraction = ds[["r"]].load()
    fraction["r"] = (fraction["r"] / 100.0).assign_attrs(units="1")
    fraction.to_netcdf(tmp_path / "fraction.nc")
    assert build(tmp_path / "fraction.nc", tmp_path / "fraction") == 0
    assert stats(tmp_path / "fraction")["mean"] == pytest.approx(stats(tmp_path / "percent")["mean"], rel=1e-6)


@pytest.mark.parametrize(
    "variable, units, message",
    [
        ("r", "kg m-3", "'r' in {path} has units 'kg m-3'; expected relative humidity in %, percent or 1"),
        ("r", None, "'r' in {path} has no units attribute; expected relative humidity"),
        ("t", "F", "'t' in {path} has units 'F'; expected temperature in K or degC"),
        ("q", "ppm", "'q' in {path} has units 'ppm'; expected specific humidity in kg kg**-1 or g kg**-1"),
        ("level", "bar", "the pressure levels of {path} have units 'bar'; expected hPa, millibars or Pa"),
    ],
)
def test_unknown_units_are_one_line_naming_variable_and_file(real_era5, tmp_path, capsys, variable, units, message):
    with xr.open_dataset(real_era5) as ds:
        ds = ds[["r"] if variable in ("r", "level") else ["t", "q"]].load()
    ds[variable].attrs = {"units": units} if units else {}
    path = tmp_path / "odd.nc"
    ds.to_netcdf(path)
    assert build(path, tmp_path / "out") == 2
    assert message.format(path=path) in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- plausibility


@pytest.mark.parametrize(
    "shift, scale, message",
    [
        (-60.0, 1.0, "100.0% of its values lie outside -1..130 %RH"),  # -40 to -8 %
        (220.0, 1.0, "100.0% of its values lie outside -1..130 %RH"),  # about 250 %
        (50.0, 0.0, "it is constant (50 % everywhere)"),
    ],
)
def test_fields_that_cannot_be_rh_are_refused_before_anything_is_written(tmp_path, capsys, shift, scale, message):
    times = hourly("2020-01-01", 4)
    field = shift + scale * known_values(times.values, LAT, LON)
    path = write_era5(tmp_path / "odd.nc", times, values=field[:, None])
    out = tmp_path / "out"
    assert build(path, out, region=REGION_ARGS, splits=SPLIT_ARGS) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: r at 300 hPa on 2020-01-01 is not plausible relative humidity: ") and message in line
    assert "--allow-implausible" in line
    assert not out.exists()


def test_allow_implausible_builds_with_a_warning(tmp_path, capsys):
    times = hourly("2020-01-01", 4)
    path = write_era5(tmp_path / "wet.nc", times, values=220.0 + known_values(times.values, LAT, LON)[:, None])
    manifest = run(path, tmp_path / "out", "--allow-implausible")
    assert manifest["stats"]["mean"] > 200
    assert "(built anyway: --allow-implausible)" in capsys.readouterr().err


def test_a_split_gone_wrong_after_a_good_first_day_is_refused_before_publishing(tmp_path, capsys):
    """The first training day is fine; the val day is 100x too large: caught when the split is counted."""
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    field[48:72] *= 100.0  # 2020-01-03, the val split of SPLIT_ARGS
    path = write_era5(tmp_path / "later.nc", times, values=field[:, None])
    assert build(path, tmp_path / "out", region=REGION_ARGS, splits=SPLIT_ARGS) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "r in split val is not plausible relative humidity: 100.0% of its values lie outside" in line
    assert not (tmp_path / "out").exists()


def test_the_sanity_band_is_not_a_clip():
    """ERA5 exceeds 100 % over ice: values up to 130 % pass, and a few beyond."""
    field = np.linspace(-0.5, 129.0, 1000)
    assert implausibility(field) is None
    field[:50] = 145.0  # 5 %: supersaturated cold air
    assert implausibility(field) is None
    assert "lie outside" in implausibility(field * 100)
