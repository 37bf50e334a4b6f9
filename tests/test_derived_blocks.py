"""The insoles' raw pass (``InsoleData.iter_derived``) makes its products in sub-blocks filled from the inflated
chunks; the result must be the plain product ``raw @ W - offset @ W`` of every block, whatever the block, chunk and
sub-block boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from sessionfactory import InsoleSpec, write_session

from treadlab.analysis.session import read_session
from treadlab.drivers.sim.gait import RunnerParams


@pytest.fixture(scope="module")
def stress_insoles(tmp_path_factory):
    path = tmp_path_factory.mktemp("derived") / "s.h5"
    write_session(path, RunnerParams(seed=4), duration_s=6.0,
                  insoles=InsoleSpec(layout="insole960", rate_hz=750.0, dtype="u1", gain=0.25, offset=4.0))
    return path


def _plain(ins, a, b):
    masks = ins.region_masks()
    w = np.column_stack([np.ones(ins.n_values), ins.positions_mm[:, 0], ins.positions_mm[:, 1], masks["heel"],
                         masks["forefoot"]]) * (ins.sensel_force_factor * ins.gain)[:, None]
    const = (ins.offset.astype(np.float64) @ w).astype(np.float32)
    raw = ins.read_raw(a, b).reshape(b - a, ins.n_values)
    return raw.astype(np.float32) @ w.astype(np.float32) - const


@pytest.mark.parametrize(("sub_bytes", "start", "stop"), [
    (1 << 20, 0, None),  # the default: several sub-blocks of 273 rows per block, a longer last one
    (1 << 16, 5, 4000),  # the 256-row floor, ranges not on chunk boundaries
    (1 << 30, 17, 3001),  # one product per block
])
def test_sub_block_products_are_the_plain_product(stress_insoles, monkeypatch, sub_bytes, start, stop):
    with read_session(stress_insoles) as s:
        ins = s.insoles["left"]
        monkeypatch.setattr(type(ins), "SUB_BLOCK_BYTES", sub_bytes)
        monkeypatch.setattr(ins, "block_rows", lambda: 1020)  # many blocks of 15 chunks
        stop = ins.n_samples if stop is None else stop
        rows = 0
        for a, t, d in ins.iter_derived(start, stop):
            b = a + len(d)
            assert d.dtype == np.float32 and d.shape == (b - a, 5)
            np.testing.assert_allclose(d, _plain(ins, a, b), rtol=1e-6, atol=1e-3)
            np.testing.assert_array_equal(t, ins.read_time(a, b))
            rows += len(d)
        assert rows == stop - start
