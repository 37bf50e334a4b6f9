"""Sensor layouts: the shipped ones load and are anatomically sensible; bad tables give one clear ConfigError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from treadlab.drivers.layouts import (
    Layout,
    foot_outline_mm,
    list_layouts,
    load_layout,
    points_in_polygon,
)
from treadlab.errors import ConfigError


def _table(**changes):
    base = {
        "foot_length_mm": 260.0,
        "positions_mm": [[0.0, 30.0], [10.0, 180.0], [-20.0, 230.0]],
        "areas_mm2": [300.0, 200.0, 150.0],
    }
    base.update(changes)
    return base


def test_shipped_layouts_are_listed_and_load():
    names = list_layouts()
    assert {"insole16", "insole99", "insole960"} <= set(names)
    sizes = {}
    for name in names:
        lay = load_layout(name)
        assert isinstance(lay, Layout) and lay.name == name
        n = lay.n_sensels
        assert lay.positions_mm.shape == (n, 2) and lay.positions_mm.dtype == np.float64
        assert lay.areas_mm2.shape == (n,) and np.all(lay.areas_mm2 > 0)
        assert lay.outline_mm.ndim == 2 and lay.outline_mm.shape[1] == 2 and len(lay.outline_mm) >= 10
        assert np.all(points_in_polygon(lay.positions_mm, lay.outline_mm))
        assert np.all((lay.positions_mm[:, 1] > 0) & (lay.positions_mm[:, 1] < lay.foot_length_mm))
        assert len(np.unique(lay.positions_mm, axis=0)) == n
        sizes[name] = n
    assert sizes["insole16"] == 16
    assert 90 <= sizes["insole99"] <= 110
    assert 940 <= sizes["insole960"] <= 980


def test_insole16_sensors_sit_at_anatomical_landmarks():
    lay = load_layout("insole16")
    x, y = lay.positions_mm.T
    L = lay.foot_length_mm
    heel = y < 0.25 * L
    forefoot = (y > 0.6 * L) & (y < 0.8 * L)
    toes = y > 0.8 * L
    assert heel.sum() >= 3 and forefoot.sum() >= 4 and toes.sum() >= 3
    # x points laterally: the 5th metatarsal head is lateral (x > 0), the 1st and the hallux medial.
    mth = np.flatnonzero(forefoot)
    assert x[mth].max() > 25 and x[mth].min() < -20
    hallux = np.flatnonzero(toes)[np.argmin(x[toes])]
    assert x[hallux] < -15


def test_outline_is_wider_at_the_forefoot_than_at_the_heel():
    outline = foot_outline_mm(260.0)
    assert outline[:, 1].min() == 0.0 and outline[:, 1].max() == pytest.approx(260.0)

    def width(y):
        pts = np.column_stack([np.linspace(-80, 80, 321), np.full(321, y)])
        return points_in_polygon(pts, outline).sum() * 0.5

    assert 55 < width(30.0) < 75
    assert 80 < width(0.72 * 260) < 105


def test_layout_round_trips_through_info_json():
    lay = load_layout("insole99")
    info = json.loads(json.dumps(lay.to_info()))
    again = load_layout(info)
    assert again.name == "insole99"
    np.testing.assert_allclose(again.positions_mm, lay.positions_mm, atol=1e-3)
    np.testing.assert_allclose(again.areas_mm2, lay.areas_mm2, atol=1e-3)
    assert load_layout(lay) is lay
    assert load_layout({"name": "insole16"}).n_sensels == 16


def test_inline_table_without_outline_uses_the_standard_outline():
    lay = load_layout(_table())
    assert lay.name == "inline" and lay.n_sensels == 3
    np.testing.assert_allclose(lay.outline_mm, foot_outline_mm(260.0))


def test_layout_arrays_are_read_only():
    lay = load_layout("insole16")
    with pytest.raises(ValueError):
        lay.positions_mm[0, 0] = 1.0


def test_unknown_name_lists_the_known_layouts():
    with pytest.raises(ConfigError, match=r"unknown layout 'insole7'.*insole16.*insole960.*insole99"):
        load_layout("insole7")


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"areas_mm2": [300.0, 200.0]}, r"lengths differ: 3 positions_mm but 2 areas_mm2"),
        ({"positions_mm": [[0.0, 30.0], [90.0, 180.0], [-20.0, 230.0]]},
         r"1 sensel\(s\) outside the foot outline.*sensel 1 at x=90"),
        ({"positions_mm": [[0.0, -20.0], [10.0, 180.0], [-20.0, 230.0]]},
         r"1 sensel\(s\) outside the foot outline.*sensel 0"),
        ({"areas_mm2": [300.0, 0.0, 150.0]}, r"areas_mm2 must be positive; sensel 1"),
        ({"areas_mm2": [300.0, -5.0, 150.0]}, r"areas_mm2 must be positive"),
        ({"positions_mm": [1.0, 2.0, 3.0]}, r"'positions_mm' must be a non-empty list \[\[x, y\]"),
        ({"positions_mm": [["a", 1.0]]}, r"'positions_mm' must be a list of numbers"),
        ({"foot_length_mm": 20.0}, r"foot_length_mm must be 100-400 mm"),
        ({"sensors": 3}, r"unknown key\(s\) 'sensors'"),
        ({"outline_mm": [[0.0, 0.0], [1.0, 1.0]]}, r"'outline_mm' needs at least 3 points"),
        ({"positions_mm": [[0.0, 30.0], [0.0, 30.0], [-20.0, 230.0]]}, r"two or more sensels share the same position"),
    ],
)
def test_bad_tables_raise_config_error_naming_the_layout(changes, pattern):
    with pytest.raises(ConfigError, match=r"layout 'mine': " + pattern):
        load_layout(_table(name="mine", **changes))


def test_missing_key_is_named():
    table = _table(name="mine")
    del table["areas_mm2"]
    with pytest.raises(ConfigError, match=r"layout 'mine': missing key 'areas_mm2'"):
        load_layout(table)


def test_toml_file_by_path(tmp_path):
    good = tmp_path / "myinsole.toml"
    good.write_text(
        "foot_length_mm = 250\npositions_mm = [[0, 20], [5, 200]]\nareas_mm2 = [100, 100]\n", encoding="utf-8"
    )
    lay = load_layout(str(good))
    assert lay.name == "myinsole" and lay.n_sensels == 2 and lay.foot_length_mm == 250.0
    bad = tmp_path / "broken.toml"
    bad.write_text("foot_length_mm = = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"layout 'broken': .*not valid TOML"):
        load_layout(str(bad))
    with pytest.raises(ConfigError, match=r"layout file .*nothere.toml' does not exist"):
        load_layout(str(tmp_path / "nothere.toml"))


def test_non_table_is_rejected():
    with pytest.raises(ConfigError, match="layout must be a name or a table"):
        load_layout(16)
