"""The vectorised C3D force-platform equations against ezc3d's own extraction (``extract_forceplat_data=True``),
sample by sample, for every platform type lab import reads (1-4) and the real Fukuchi file (type 4).
"""

from __future__ import annotations

import ezc3d
import numpy as np
import pytest
from force_support import RBDS017_C3D, write_platform_c3d

from treadlab.acquisition.c3d_platforms import PlatformError, platform_params, platform_signals

KEYS = (("force", "force"), ("moment", "moment"), ("cop", "center_of_pressure"), ("tz", "Tz"))


def _compare(path):
    e = ezc3d.c3d(str(path), extract_forceplat_data=True)
    t = int(np.asarray(e["parameters"]["FORCE_PLATFORM"]["TYPE"]["value"]).ravel()[0])
    mine = platform_signals(platform_params(e["parameters"], 0, t), e["data"]["analogs"][0])
    theirs = e["data"]["platform"][0]
    for k, kk in KEYS:
        np.testing.assert_allclose(mine[k], theirs[kk], rtol=1e-9, atol=1e-9, err_msg=k)


def test_real_type_4_file_agrees_with_ezc3d():
    _compare(RBDS017_C3D)


@pytest.mark.parametrize("plate_type", [1, 2, 3, 4])
def test_every_type_agrees_with_ezc3d(tmp_path, plate_type):
    rng = np.random.default_rng(plate_type)
    n_ch = 8 if plate_type == 3 else 6
    analogs = rng.normal(0, 50, (n_ch, 2000))
    analogs[2] += 700.0  # a vertical load, so that the COP is defined
    if plate_type == 3:
        analogs[4:8] += 175.0
    cal = np.diag([500, 500, 1000, 8e5, 2.5e5, 4e5]) + rng.normal(0, 5, (6, 6)) if plate_type == 4 else None
    poly = rng.normal(0, 1e-7, 12) if plate_type == 3 else None
    _compare(write_platform_c3d(tmp_path / f"t{plate_type}.c3d", plate_type, analogs, cal=cal, cop_poly=poly))


def test_bad_parameters_are_one_clear_error(tmp_path):
    path = write_platform_c3d(tmp_path / "t4.c3d", 4, np.ones((6, 100)))  # type 4 without a CAL_MATRIX
    e = ezc3d.c3d(str(path))
    with pytest.raises(PlatformError, match="CAL_MATRIX has no 6x6 matrix for platform 1"):
        platform_params(e["parameters"], 0, 4)
    with pytest.raises(PlatformError, match="CHANNEL does not list 8 channels"):
        platform_params(e["parameters"], 0, 3)
