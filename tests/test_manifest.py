"""manifest.json: read back with its checks, older schema versions, and written readably and fast."""

import json

import numpy as np
import pytest

from tfrecords_builder.contract.manifest import (
    ManifestError,
    read_manifest,
    readable_json,
    write_manifest,
    write_readable_json,
)

V1 = {
    "schema_version": 1,
    "hr_shape": [8, 16, 16],
    "lr_shape": [8, 2, 2],
    "scale": 8,
    "grid": {"lat": [41.0 + 0.25 * i for i in range(16)], "lon": [111.0 + 0.25 * i for i in range(16)]},
    "splits": {},
    "stats": {},
}


def test_a_schema_1_manifest_reads_as_one_patch(tmp_path):
    write_readable_json(V1, tmp_path / "manifest.json")
    manifest = read_manifest(tmp_path)
    assert manifest["patches"] == {
        "size": [16, 16],
        "stride": [16, 16],
        "rows": 1,
        "cols": 1,
        "count": 1,
        "corners": [[41.0, 111.0]],
        "dropped_rows": 0,
        "dropped_cols": 0,
        "dropped_cells": 0,
        "coverage": 1.0,
    }
    assert manifest["_dir"] == str(tmp_path)


def test_an_unknown_schema_version_is_refused_in_one_line(tmp_path):
    write_readable_json({**V1, "schema_version": 4}, tmp_path / "manifest.json")
    with pytest.raises(ManifestError, match="has schema version 4, this code reads 1, 2, 3: a newer hsr-keras made it"):
        read_manifest(tmp_path)
    write_readable_json({**V1, "schema_version": 0}, tmp_path / "manifest.json")
    with pytest.raises(ManifestError, match="has schema version 0, this code reads 1, 2, 3: rebuild the data"):
        read_manifest(tmp_path)
    write_readable_json({**V1, "schema_version": "2"}, tmp_path / "manifest.json")  # a string, hand-edited
    with pytest.raises(ManifestError, match="has schema version '2', this code reads 1, 2, 3: rebuild the data"):
        read_manifest(tmp_path)


def test_readable_json_is_json_with_a_key_per_line_and_numbers_on_one():
    manifest = {
        "b": {"lat": [1.5, 2.0], "z": None},
        "a": [{"date": "2020-01-01", "level": 300}],
        "climatology": {"300": [[[1.25, float("nan")]]]},
        "empty": {},
    }
    text = readable_json(manifest)
    assert json.loads(text).keys() == manifest.keys()
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(manifest, sort_keys=True)
    assert '  "lat": [1.5, 2.0],' in text.splitlines() and text.splitlines()[1] == ' "a": ['


def test_a_climatology_of_patches_goes_to_a_file_beside_the_manifest_and_comes_back(tmp_path):
    per_patch = {"250": np.full((3, 8, 16, 16), 1.5, np.float32), "300": np.full((3, 8, 16, 16), 2.5, np.float32)}
    write_manifest({**V1, "schema_version": 2, "climatology": per_patch}, tmp_path)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["climatology"] == {"file": "climatology.npy", "levels": ["250", "300"]}
    manifest = read_manifest(tmp_path)
    for level, values in per_patch.items():
        np.testing.assert_array_equal(manifest["climatology"][level], values)
    write_manifest({**V1, "climatology": {"300": [[[1.0]]]}}, tmp_path)  # a one-patch build replaces it
    assert not (tmp_path / "climatology.npy").exists()
    assert read_manifest(tmp_path)["climatology"] == {"300": [[[1.0]]]}
