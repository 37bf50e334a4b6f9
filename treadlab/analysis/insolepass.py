"""The step table of one insole, computed in passes over blocks of its signals, in memory bounded by the block.

:class:`FootPass` reads the insole's raw data once (:meth:`FootPass.spill`: per-sample total force, moments and
region forces to a :class:`~treadlab.analysis.store.SignalStore`), then makes every later pass over the stored
signals a block at a time, each block read with ``pad`` samples either side so that filters, the running
baseline and contacts near a block's edge see the same neighbourhood as in one piece. A step belongs to the
block that holds its first sample. What needs the whole session is reduced to a few numbers between passes:
the loading amplitude of contact detection (pooled quantiles of every block), the swing noise (median over
blocks), the normalising force and the filter cutoff (from the step tables). A session of up to 1.5 blocks
(``BLOCK_SAMPLES``: 349 s at 750 Hz, 22 min at 200 Hz) is one block: the same as an analysis in one piece.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from treadlab.analysis.contacts import ContactDetection
from treadlab.analysis.cop import cop_from_sums, layout_bounds_mm, min_load
from treadlab.analysis.metrics import LoadingRates, auto_cutoff_hz, lowpass, step_force_metrics
from treadlab.analysis.ragged import range_sum
from treadlab.analysis.session import InsoleData
from treadlab.analysis.store import BLOCK_SAMPLES, FootSignals, SignalStore, block_plan
from treadlab.analysis.strike import StrikeIndex

__all__ = ["FootPass", "pooled_quantile", "regular_time"]

#: Samples read either side of a block: covers the running baseline (2 x its window), the filters' transients
#: and the longest contact.
PAD_S = 10.0
#: Quantile levels kept per block for the whole session's loading amplitude.
_SKETCH = np.linspace(0.0, 1.0, 1001)
#: Automatic filter: noise of 1-ms slopes as a fraction of the foot's median VILR.
RELATIVE_SLOPE_NOISE = 0.03
#: The impact peak and AVLR use this times the VILR cutoff. 2 (less smoothing, since they average over many
#: samples) reached the 0.4 x rate cap at 200 Hz, i.e. no smoothing: 99 noisy sensels then made t20/t80 jitter
#: by ~1 ms and AVLR 11 % off. 1.4 keeps AVLR within 9 % there and changes little elsewhere.
AVLR_CUTOFF_FACTOR = 1.4
_FOOTSWITCH_NAN = ("impact_peak_bw", "impact_peak_s", "avlr_bw_s", "vilr_bw_s", "peak_force_bw", "peak_force_s",
                   "impulse_bw_s", "strike_index_pct", "onset_diff_ms")
_FOOTSWITCH_TEXT = ("loading_reference", "strike_class", "strike_flag", "onset_class")


#: Shorter runs keep their times (too few samples to tell regular sampling from jitter).
_MIN_REGULAR_RUN = 64


def regular_time(t: np.ndarray, max_residual_frac: float = 0.5) -> np.ndarray:
    """Sample times made regular: each continuous run fitted by a straight line over sample index.

    An insole samples on its own crystal at a fixed rate, but the times it reports can be coarse (whole
    milliseconds over the line protocol, i.e. +-0.5 ms of quantisation on a 5-ms interval at 200 Hz, which puts
    +-20 % on a one-interval slope such as VILR). A least-squares line per run (between jumps of more than 1.5
    intervals) keeps the clock and removes the jitter. A run whose times stray from the line by more than
    ``max_residual_frac`` of an interval is not regular sampling and is kept as it is, as are runs of fewer than
    64 samples.
    """
    t = np.asarray(t, dtype=np.float64)
    n = len(t)
    if n < _MIN_REGULAR_RUN:
        return t.copy()
    dt = np.diff(t)
    nominal = float(np.median(dt))
    cuts = np.flatnonzero((dt > 1.5 * nominal) | (dt <= 0) | ~np.isfinite(dt)) + 1
    out = t.copy()
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, n]):  # one iteration per continuous run (a gap starts a new one)
        if b - a < _MIN_REGULAR_RUN or not np.isfinite(t[a:b]).all():
            continue
        i = np.arange(b - a, dtype=np.float64)
        slope, icpt = np.polyfit(i, t[a:b], 1)
        fit = icpt + slope * i
        if np.abs(t[a:b] - fit).max() < max_residual_frac * nominal:
            out[a:b] = fit
    return out


def pooled_quantile(sketches: list[np.ndarray], weights: list[float], q: float) -> float:
    """Quantile ``q`` (0..1) of the union of blocks, from each block's quantiles at ``_SKETCH`` levels."""
    values = np.concatenate(sketches)
    w = np.concatenate([np.full(len(s), wt / len(s)) for s, wt in zip(sketches, weights)])
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(w[order])
    return float(np.interp(q * cum[-1], cum, values[order]))


class FootPass:
    """One insole's passes. Made by :func:`~treadlab.analysis.analyze`; call the methods in order.

    Parameters
    ----------
    foot : str
    ins : InsoleData
    store : SignalStore
    block_samples : int
        Samples per block (the core, without padding).

    Attributes
    ----------
    contacts_ : DataFrame
        ``first``, ``stop`` (sample ranges of stance), ``ic_s``, ``to_s``, ``impulse_n_s`` (baseline-corrected
        force, unfiltered).
    noise_ : float
        Robust SD of the force's white noise in swing (median over blocks).
    rate_hz_ : float
        Median sampling rate.
    breaks_ : ndarray of int
    break_times_s_ : ndarray
        Time of the first sample after each break.
    """

    def __init__(self, foot: str, ins: InsoleData, store: SignalStore, block_samples: int = BLOCK_SAMPLES):
        self.foot = foot
        self.ins = ins
        self.store = store
        self.block_samples = int(block_samples)
        self.n = ins.n_samples

    # Blocks ---------------------------------------------------------------------------------------------------
    @property
    def n_blocks(self) -> int:
        """Blocks of the passes (1 for a session of up to 1.5 blocks)."""
        return len(self._blocks())

    def _blocks(self):
        return block_plan(self.n, self.block_samples, int(PAD_S * self.rate_hz_) + 1)

    def _local_breaks(self, lo: int, hi: int) -> np.ndarray:
        br = self.breaks_
        return br[(br > lo) & (br < hi)] - lo

    def _read(self, lo: int, hi: int, *names: str) -> list[np.ndarray]:
        return [self.store.read(self.foot, name, lo, hi) for name in names]

    @staticmethod
    def _owned(first_local: np.ndarray, lo: int, a: int, b: int) -> np.ndarray:
        g = first_local + lo
        return (g >= a) & (g < b)

    # Pass 0: raw data -> stored signals ----------------------------------------------------------------------
    def spill(self) -> FootPass:
        """Read the raw data once: time, total force, moments and region forces to the store; breaks; rate."""
        dts = []

        def blocks():
            for a, t, d in self.ins.iter_derived():  # one iteration per ~32 MiB of raw data
                self.store.append(self.foot, "time_s", regular_time(t))
                self.store.append(self.foot, "derived", d)
                if len(t) > 1:
                    dts.append(float(np.median(np.diff(t))))
                yield a, t

        self.breaks_ = self.ins.breaks_from_blocks(blocks())
        self.rate_hz_ = 1.0 / float(np.median(dts)) if dts else (self.ins.rate_hz or 1.0)
        t_br = [self.store.read(self.foot, "time_s", i, i + 1) for i in self.breaks_]
        self.break_times_s_ = np.concatenate(t_br) if t_br else np.empty(0)
        return self

    # Pass 1-2: contacts ----------------------------------------------------------------------------------------
    def detect_contacts(self, contact: ContactDetection) -> FootPass:
        """Contacts of every block (with the session's loading amplitude), their impulse, the swing noise.

        Writes the baseline-corrected force to the store.
        """
        plan = self._blocks()
        det_proto = contact
        self.noise_, self.amplitude_ = 0.0, None
        self.contacts_ = pd.DataFrame({"first": np.empty(0, np.int64), "stop": np.empty(0, np.int64),
                                       "ic_s": np.empty(0), "to_s": np.empty(0), "impulse_n_s": np.empty(0)})
        if self.n < 4:
            return self
        if len(plan) > 1 and contact.amplitude is None:
            sketches, weights = [], []
            for lo, a, b, hi in plan:  # one iteration per block
                t, d = self._read(lo, hi, "time_s", "derived")
                xc = contact.smoothed_excess(t, d[:, 0])[a - lo:b - lo]
                sketches.append(np.quantile(xc, _SKETCH))
                weights.append(float(b - a))
            det_proto = copy.copy(contact)
            det_proto.amplitude = pooled_quantile(sketches, weights, 0.99)
        parts, noises = [], []
        for lo, a, b, hi in plan:  # one iteration per block
            t, d = self._read(lo, hi, "time_s", "derived")
            det = copy.copy(det_proto).detect(t, d[:, 0], self._local_breaks(lo, hi))
            self.store.append(self.foot, "force", det.corrected_[a - lo:b - lo])
            noises.append(det.raw_noise_)
            c = det.contacts_
            if c.empty:
                continue
            first, stop = c["first"].to_numpy(np.int64), c["stop"].to_numpy(np.int64)
            own = self._owned(first, lo, a, b)
            dt = np.gradient(t) if len(t) > 1 else np.ones(len(t))
            imp = range_sum(det.corrected_ * dt, first, stop)
            parts.append(pd.DataFrame({"first": first[own] + lo, "stop": stop[own] + lo,
                                       "ic_s": c["ic_s"].to_numpy()[own], "to_s": c["to_s"].to_numpy()[own],
                                       "impulse_n_s": imp[own]}))
        if parts:
            self.contacts_ = pd.concat(parts, ignore_index=True)
        self.noise_ = float(np.median(noises)) if noises else 0.0
        self.amplitude_ = det_proto.amplitude
        return self

    def _steps_in(self, lo: int, a: int, b: int, hi: int) -> tuple[np.ndarray, ...]:
        """The contacts a block owns, as block-local sample ranges, and their times and row numbers."""
        c = self.contacts_
        first = c["first"].to_numpy(np.int64)
        rows = np.flatnonzero((first >= a) & (first < b))
        return (first[rows] - lo, c["stop"].to_numpy(np.int64)[rows] - lo, c["ic_s"].to_numpy()[rows],
                c["to_s"].to_numpy()[rows], rows)

    # Pass 3: automatic filter cutoff ---------------------------------------------------------------------------
    def auto_cutoff(self, norm_n: float, loading: LoadingRates) -> float:
        """The low-pass cutoff of this foot, in two passes.

        First VILR with a fixed slope-noise target; then the highest cutoff whose noise on VILR slopes (the secant
        over the VILR window, :func:`~treadlab.analysis.metrics.secant_slope_noise`) is RELATIVE_SLOPE_NOISE of the
        foot's median VILR, times ``(window / 2 ms)^0.7`` when the window is longer than 2 ms (the sample interval
        below 500 Hz). A long secant has few slopes in a loading window for noise to raise the maximum of, while a
        low-pass cuts deeper into it: at 200 Hz, 5.7 % is the balance (calibrated on the simulated runners of
        tests/test_analysis_known.py). Sharp rear-foot impacts, with their high VILR, keep more bandwidth.
        """
        rate_hz = self.rate_hz_
        window_s = max(1, int(round(loading.vilr_interval_ms * 1e-3 * rate_hz))) / rate_hz
        fc0 = auto_cutoff_hz(rate_hz, self.noise_ / norm_n, window_s=window_s)
        if self.ins.n_values < 2 or self.contacts_.empty:
            return fc0
        v0 = []
        for lo, a, b, hi in self._blocks():  # one iteration per block
            first, stop, ic, to, _ = self._steps_in(lo, a, b, hi)
            if not len(first):
                continue
            t, force = self._read(lo, hi, "time_s", "force")
            f0 = lowpass(t, force, fc0, self._local_breaks(lo, hi)) / norm_n
            v0.append(loading.compute(t, f0, first, stop, ic, to).vilr_bw_s_)
        v0 = np.concatenate(v0) if v0 else np.empty(0)
        if not np.isfinite(v0).any():
            return fc0
        frac = RELATIVE_SLOPE_NOISE * max(1.0, window_s / 2e-3) ** 0.7
        return auto_cutoff_hz(rate_hz, self.noise_ / norm_n, max(frac * float(np.nanmedian(v0)), 0.5), window_s)

    # Pass 4: the step table ------------------------------------------------------------------------------------
    def table(self, norm_n: float, cutoff_hz: float | None, loading: LoadingRates,
              strike: StrikeIndex) -> tuple[pd.DataFrame, FootSignals]:
        """Every per-step metric; writes the filtered force and the centre of pressure to the store.

        The COP is defined where the foot carries at least :data:`~treadlab.analysis.cop.MIN_LOAD_BW` of
        ``norm_n`` and lies within the layout's bounds (:func:`~treadlab.analysis.cop.cop_from_sums`).
        """
        parts = []
        bounds = layout_bounds_mm(self.ins.positions_mm)
        for lo, a, b, hi in self._blocks():  # one iteration per block
            first, stop, ic, to, rows = self._steps_in(lo, a, b, hi)
            t, force, d = self._read(lo, hi, "time_s", "force", "derived")
            br = self._local_breaks(lo, hi)
            force = force.astype(np.float64)
            force_bw = lowpass(t, force, cutoff_hz, br) / norm_n
            self.store.append(self.foot, "force_bw", force_bw[a - lo:b - lo])
            self.store.append(self.foot, "cop_mm", cop_from_sums(d[a - lo:b - lo], min_load(norm_n), bounds))
            if len(first):
                parts.append(self._block_table(t, force, force_bw, d, br, first, stop, ic, to, lo, norm_n,
                                               cutoff_hz, loading, strike).set_index(rows))
        cols = ["ic_s", "to_s", "first_sample", "stop_sample"]
        table = pd.concat(parts) if parts else pd.DataFrame({c: [] for c in cols})
        table.insert(0, "foot", self.foot)
        table = table.sort_index()
        table["impulse_n_s"] = self.contacts_["impulse_n_s"].to_numpy()[table.index.to_numpy(np.int64)]
        table = table.reset_index(drop=True)
        sig = FootSignals(self.foot, self._signal_reader, self.n, self.breaks_, self.ins,
                          has_cop=self.ins.n_values > 1, extra={"filter_cutoff_hz": cutoff_hz})
        return table, sig

    def _block_table(self, t, force, force_bw, d, br, first, stop, ic, to, lo, norm_n, cutoff_hz, loading,
                     strike) -> pd.DataFrame:
        ins = self.ins
        table = pd.DataFrame({"ic_s": ic, "to_s": to, "contact_time_ms": (to - ic) * 1e3})
        if ins.n_values > 1:
            avlr_bw = lowpass(t, force, AVLR_CUTOFF_FACTOR * cutoff_hz, br) / norm_n if cutoff_hz else force_bw
            lr = loading.compute(t, force_bw, first, stop, ic, to, avlr_force_bw=avlr_bw)
            lr.pool(t, force / norm_n)  # the foot's shared loading edge, fitted to the unfiltered force
            table["impact_peak_bw"] = lr.impact_peak_bw_
            table["impact_peak_s"] = lr.impact_peak_s_
            table["loading_reference"] = np.where(np.isfinite(lr.impact_peak_bw_), "impact_peak", "stance_13pct")
            table["avlr_bw_s"] = lr.avlr_bw_s_
            table["vilr_bw_s"] = lr.vilr_bw_s_
            fm = step_force_metrics(t, force_bw, first, stop, raw_force_bw=force / norm_n)
            for c in fm:
                table[c] = fm[c].to_numpy()
            si = strike.compute(t, d[:, 0], d[:, 2], ins.foot_length_mm, first, stop, ic,
                                {"heel": d[:, 3], "forefoot": d[:, 4]}).table_
            for c in si:
                table[c] = si[c].to_numpy()
        else:  # a footswitch: timing only
            for c in _FOOTSWITCH_NAN:
                table[c] = np.nan
            for c in _FOOTSWITCH_TEXT:
                table[c] = ""
            table["strike_agree"] = False
        table["first_sample"] = first + lo
        table["stop_sample"] = stop + lo
        return table

    def _signal_reader(self, a: int, b: int) -> dict:
        t, force, force_bw = self._read(a, b, "time_s", "force", "force_bw")
        cop = self.store.read(self.foot, "cop_mm", a, b) if self.ins.n_values > 1 else None
        return {"time_s": t, "force": force, "force_bw": force_bw, "cop_mm": cop}
