"""Synthetic ERA5-like humidity: layout, determinism, realism against ERA5 numbers, files, CLI.

The realism targets are the ERA5 r (300 hPa) numbers in DESIGN.md; every statistic is
computed here independently of the generator, with plain numpy.
"""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from tfrecords_builder import synthetic
from tfrecords_builder.synthetic import main, synthetic_dataset, write_synthetic

SMALL = {"lat_bounds": (40.0, 45.0), "lon_bounds": (110.0, 115.0)}  # 21 x 21, for file and CLI tests


@pytest.fixture(scope="module")
def ten_days():
    """Ten hourly days on the default 81 x 81 box at 300 hPa: the sample for the realism tests."""
    return synthetic_dataset("2019-03-01", "2019-03-10", seed=0)


def tiles(r, step=3):
    """64 x 64 tiles at four offsets (the paper region among them) of every `step`-th frame."""
    return np.stack([r[t, i : i + 64, j : j + 64] for t in range(0, len(r), step) for i in (0, 9, 17) for j in (0, 8)])


def radial_spectrum(tile):
    """Radially averaged power spectrum of a square tile: mean |FFT|^2 over rings of integer
    wavenumber. A Hann window first: without one, the tile's non-periodic edges leak as k^-3
    and hide any steeper fall-off."""
    n = tile.shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2((tile - tile.mean()) * window)) ** 2
    k = np.fft.fftfreq(n) * n
    ring = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
    return np.bincount(ring.ravel(), power.ravel()) / np.bincount(ring.ravel())


def slope(spectrum, k_min, k_max):
    k = np.arange(k_min, k_max + 1)
    return np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0]


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


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_values_other_seed_other_values():
    a = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=7).r.values
    b = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=7).r.values
    c = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=8).r.values
    np.testing.assert_array_equal(a, b)
    assert abs(np.corrcoef(a.ravel(), c.ravel())[0, 1]) < 0.5


def test_levels_differ_but_each_level_is_deterministic():
    both = synthetic_dataset("2019-01-01", "2019-01-01", levels=(250, 300), interval_hours=6).r
    alone = synthetic_dataset("2019-01-01", "2019-01-01", levels=(300,), interval_hours=6).r
    np.testing.assert_array_equal(both.sel(level=300).values, alone.sel(level=300).values)
    assert abs(np.corrcoef(both.sel(level=250).values.ravel(), both.sel(level=300).values.ravel())[0, 1]) < 0.5


def test_values_depend_only_on_time_not_on_the_request():
    hourly = synthetic_dataset("2019-01-01", "2019-01-03", **SMALL).r
    part = synthetic_dataset("2019-01-02", "2019-01-02", **SMALL).r
    three_hourly = synthetic_dataset("2019-01-01", "2019-01-03", interval_hours=3, **SMALL).r
    np.testing.assert_array_equal(part.values, hourly.sel(time=part.time).values)
    np.testing.assert_array_equal(three_hourly.values, hourly.values[::3])
    # An overlapping box sees the same weather.
    big = synthetic_dataset("2019-01-02", "2019-01-02", interval_hours=6).r
    np.testing.assert_array_equal(
        big.sel(latitude=slice(45.0, 40.0), longitude=slice(110.0, 115.0)).values, part.values[::6]
    )


# ----------------------------------------------------------------------------- realism


def test_value_statistics_match_era5_at_300hpa(ten_days):
    r = ten_days.r.values[:, 0]
    tile_std = tiles(r).std(axis=(1, 2)).mean()
    above = (r > 100).mean()
    assert 15.0 < tile_std < 35.0, tile_std  # ERA5: about 25
    assert 0.05 < above < 0.20, above  # ERA5: 12.7 %, RH over ice, never clipped at 100
    assert r.min() >= 0.0 and 110.0 < r.max() < 150.0, (r.min(), r.max())  # ERA5: up to about 145
    assert 40.0 < r.mean() < 70.0, r.mean()


def test_power_spectrum_slopes_match_era5(ten_days):
    spectrum = np.mean([radial_spectrum(t) for t in tiles(ten_days.r.values[:, 0], step=6)], axis=0)
    large, small = slope(spectrum, 2, 8), slope(spectrum, 8, 16)
    assert -4.0 < large < -3.0, large  # ERA5: -3.5
    assert -6.4 < small < -5.0, small  # ERA5: about -5.7
    assert small < large - 1.0


def test_hourly_change_and_synoptic_evolution(ten_days):
    r = ten_days.r.values[:, 0]
    change = np.abs(np.diff(r, axis=0)).mean()
    assert 1.0 < change < 5.0, change  # ERA5 100-350 hPa: 2.8 %RH

    def corr(lag):
        return np.corrcoef(r[:-lag].ravel(), r[lag:].ravel())[0, 1]

    assert corr(1) > 0.95
    assert corr(48) < 0.3  # days differ


def test_weather_evolves_beyond_translation(ten_days):
    """Pure translation would make each hourly change exactly -u . grad(r) (through any map
    r = f(latent)); a regression on the gradients explains most, not all, of the change."""
    r = ten_days.r.values[:, 0].astype(np.float64)
    explained = []
    for t in range(1, len(r) - 1, 6):
        change = ((r[t + 1] - r[t - 1]) / 2)[2:-2, 2:-2].ravel()
        gy, gx = (g[2:-2, 2:-2].ravel() for g in np.gradient(r[t]))
        design = np.stack([gx, gy, np.ones_like(gx)], axis=1)
        fit = design @ np.linalg.lstsq(design, change, rcond=None)[0]
        explained.append(1 - ((change - fit) ** 2).sum() / ((change - change.mean()) ** 2).sum())
    assert 0.4 < np.mean(explained) < 0.9, explained  # a frozen, translating field gives about 0.97


def test_patterns_are_advected_downstream(ten_days):
    """The frame 6 h later matches the earlier one best when shifted (mostly eastward), not in place."""
    r = ten_days.r.values[:, 0]
    m = 12  # largest shift tried, in cells
    gains, shifts = [], []
    for t in range(0, len(r) - 6, 24):
        before, after = r[t], r[t + 6]
        best, best_shift = -1.0, None
        for dy in range(-m, m + 1):
            for dx in range(-m, m + 1):
                a = before[m : 81 - m, m : 81 - m]
                b = after[m + dy : 81 - m + dy, m + dx : 81 - m + dx]  # rows run south, columns east
                c = np.corrcoef(a.ravel(), b.ravel())[0, 1]
                if c > best:
                    best, best_shift = c, (dy, dx)
        in_place = np.corrcoef(before.ravel(), after.ravel())[0, 1]
        gains.append(best - in_place)
        shifts.append(best_shift)
    assert np.mean(gains) > 0.02, gains
    assert np.mean([dx for _, dx in shifts]) > 1.0, shifts  # westerly drift: patterns move east
    assert sum(s != (0, 0) for s in shifts) >= 0.8 * len(shifts), shifts


def test_diurnal_cycle_peaks_in_the_local_early_morning(ten_days):
    mean = ten_days.r.values[:, 0].mean(axis=(1, 2))
    smooth = np.convolve(mean, np.ones(24) / 24, mode="same")
    anomaly = (mean - smooth)[12:-12]
    hours = ten_days.time.dt.hour.values[12:-12]
    cycle = np.array([anomaly[hours == h].mean() for h in range(24)])
    amplitude = (cycle.max() - cycle.min()) / 2
    assert 1.0 < amplitude < 6.0, cycle  # a few %RH; without a cycle this noise is about 0.4
    # 06 local solar time at the box centre (113E) is about 22:30 UTC.
    assert min(abs(cycle.argmax() - 22.5), 24 - abs(cycle.argmax() - 22.5)) <= 3, cycle.argmax()


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
    real_frames = synthetic._Generator.frames

    def failing_frames(self, times, **kwargs):
        calls.append(len(times))
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return real_frames(self, times, **kwargs)

    monkeypatch.setattr(synthetic._Generator, "frames", failing_frames)
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
