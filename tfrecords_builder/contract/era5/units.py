"""Units of ERA5 inputs: what an input says its levels and variables are in, converted to the builder's.

The builder computes in hPa (levels), % (relative humidity), K (temperature), kg/kg
(specific humidity) and SI units for the predictors (m s-1 winds, m2 s-2 geopotential, Pa
pressures, kg m-2 water columns; `BUILDER_UNITS`). Inputs say otherwise often enough: levels in Pa (30000, not 300), CF's
fraction "1" for relative humidity, g/kg, degrees Celsius. The `units` attribute of each is
read and converted here; units this module does not know are refused in one line naming the
variable and the input, so no value is used in units it is not in.

Example:

    scale, offset = variable_conversion(ds["q"], "q", "era5.nc")   # (0.001, 0.0) for g/kg
    kg_per_kg = ds["q"].values * scale + offset
"""

from tfrecords_builder.contract.errors import BuildError

# units as inputs write them (lower case) -> (scale, offset) to the builder's units
_PERCENT = {"%": (1.0, 0.0), "percent": (1.0, 0.0), "1": (100.0, 0.0), "fraction": (100.0, 0.0), "0-1": (100.0, 0.0)}
_KELVIN = {"k": (1.0, 0.0), "kelvin": (1.0, 0.0)}
_KELVIN.update(
    dict.fromkeys(("degc", "deg_c", "°c", "c", "celsius", "degree_celsius", "degrees_celsius"), (1.0, 273.15))
)
_MASS_FRACTION = dict.fromkeys(("kg kg**-1", "kg kg-1", "kg/kg", "kg kg^-1", "1"), (1.0, 0.0))
_MASS_FRACTION.update(dict.fromkeys(("g kg**-1", "g kg-1", "g/kg", "g kg^-1"), (0.001, 0.0)))
_SPEED = dict.fromkeys(("m s**-1", "m s-1", "m/s", "m s^-1"), (1.0, 0.0))
_GEOPOTENTIAL = dict.fromkeys(("m**2 s**-2", "m2 s-2", "m^2 s^-2", "m2/s2"), (1.0, 0.0))
_PASCAL = dict.fromkeys(("pa", "pascal", "pascals"), (1.0, 0.0))
_COLUMN = dict.fromkeys(("kg m**-2", "kg m-2", "kg/m2", "kg m^-2"), (1.0, 0.0))
_LAND_FRACTION = dict.fromkeys(("(0 - 1)", "(0-1)", "0-1", "1", "fraction"), (1.0, 0.0))

VARIABLE_UNITS = {
    "r": ("relative humidity", "%, percent or 1 (a fraction)", _PERCENT),
    "t": ("temperature", "K or degC", _KELVIN),
    "q": ("specific humidity", "kg kg**-1 or g kg**-1", _MASS_FRACTION),
    "2t": ("2 metre temperature", "K or degC", _KELVIN),
    "2d": ("2 metre dewpoint temperature", "K or degC", _KELVIN),
    "u": ("eastward wind", "m s**-1", _SPEED),
    "v": ("northward wind", "m s**-1", _SPEED),
    "z": ("geopotential", "m**2 s**-2", _GEOPOTENTIAL),
    "sp": ("surface pressure", "Pa", _PASCAL),
    "msl": ("mean sea level pressure", "Pa", _PASCAL),
    "tcwv": ("total column water vapour", "kg m**-2", _COLUMN),
    "lsm": ("land-sea mask", "(0 - 1)", _LAND_FRACTION),
}
"""Variable -> (what it is, the units accepted, {units: (scale, offset) to the builder's units, `BUILDER_UNITS`})."""

BUILDER_UNITS = {
    "r": "%",
    "t": "K",
    "q": "kg kg-1",
    "2t": "K",
    "2d": "K",
    "u": "m s-1",
    "v": "m s-1",
    "z": "m2 s-2",
    "sp": "Pa",
    "msl": "Pa",
    "tcwv": "kg m-2",
    "lsm": "1",
}
"""The units every variable is read in, whatever its input's: the units of a build's predictors."""

LEVEL_UNITS = {"hpa": 1.0, "millibars": 1.0, "millibar": 1.0, "mbar": 1.0, "mb": 1.0, "pa": 0.01, "kpa": 10.0}
"""Pressure-level units -> the factor to hPa."""

HPA_MAX = 1100.0
"""No pressure level lies deeper than this in hPa: larger levels without units are refused, not guessed."""


def _units(da):
    return " ".join(str(da.attrs.get("units", "")).split())


def variable_conversion(da, variable, name):
    """(scale, offset) taking `variable` from its `units` attribute to %, K or kg/kg; a `BuildError` for other units.

    A variable not in `VARIABLE_UNITS` is the target, relative humidity (`--variable`).
    """
    what, accepted, table = VARIABLE_UNITS.get(variable, VARIABLE_UNITS["r"])
    units = _units(da)
    if units.lower() not in table:
        shown = f"units {units!r}" if units else "no units attribute"
        raise BuildError(f"{variable!r} in {name} has {shown}; expected {what} in {accepted}")
    return table[units.lower()]


def level_factor(levels, name):
    """The factor taking a level coordinate to hPa, from its `units` attribute; a `BuildError` when it cannot be known.

    Levels without units are taken as hPa when they can be (none above `HPA_MAX`).
    """
    units = _units(levels)
    if units.lower() in LEVEL_UNITS:
        return LEVEL_UNITS[units.lower()]
    if units:
        raise BuildError(f"the pressure levels of {name} have units {units!r}; expected hPa, millibars or Pa")
    deepest = float(levels.max()) if levels.size else 0.0
    if deepest > HPA_MAX:
        raise BuildError(
            f"the pressure levels of {name} go up to {deepest:g} and have no units attribute: they cannot be hPa; "
            "set their units (e.g. Pa) in the file"
        )
    return 1.0
