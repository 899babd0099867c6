"""Tests of `hsr_keras.serving.saved_model` that need no export: the client facts of the asset file."""

from test_export import SCALE, make_manifest

from hsr_keras.serving import saved_model as serving


def test_model_info_for_block_means():
    info = serving.model_info(make_manifest(degradation="block_mean"))
    assert info["grid"]["hr_offset_cells"] == -(SCALE - 1) / 2
    assert info["degradation"] == "block_mean"
