"""A simulated instrumented treadmill: the ground reaction forces of the simulated runner on one or two belts.

The runner is the same :class:`~treadlab.drivers.sim.gait.GaitModel` (or
:class:`~treadlab.drivers.sim.change.ScheduledGait`) the simulated insoles and the mat use, on the rig's session
clock, so the treadmill's contacts are the insoles' contacts and the ground truth is the rig's steps CSV.

Frame (the plate frame of every belt, named in INFO ``axes``): ``x`` forward (the runner faces +x; the belt moves
towards -x), ``y`` to the runner's left, ``z`` up; forces are the ground reaction on the runner (``Fz`` > 0 under
load). The treadmill frame has its origin at the centre of the running surface, on the surface. The force kind's
rule: each plate's moments and COP channels are in that plate's frame, and ``origin_mm`` is the centre of the
plate's top surface in it. By default every plate's frame is the treadmill frame (``origin_mm`` = the belt's
centre); with ``moments_about="belt"`` each belt has its own frame, origin at its surface centre (``origin_mm``
= [0, 0, 0], as Bertec reports each belt). Either way ``COPx = -My / Fz`` and ``COPy = Mx / Fz`` in the plate's
frame.

Forces of one foot (noise-free)
-------------------------------
- Vertical: ``Fz`` = :meth:`GaitModel.vertical_force` (the insoles' total force, standing included). On a single
  belt the plate carries both feet, so walking's double support sums both.
- Centre of pressure: the foot's COP (:meth:`GaitModel.cop`, heel to toe in the foot frame) placed on the belt at
  the step's landing position (steps CSV ``x_mm``, ``y_mm``: the back of the heel at initial contact), carried
  backwards with the belt at the step's speed from initial contact on (``x = y_mm - v (t - ic) + cop_y``,
  ``y = -(x_mm + s cop_x)`` with ``s`` +1 for the right foot, -1 for the left, as on the simulated mat).
- Horizontal: the resultant points from the COP to the body's centre of mass (the spring-mass model of running,
  Blickhan 1989), ``Fx = Fz (x_com - x_cop) / h``, ``Fy = Fz (y_com - y_cop) / h``. ``h`` is the height of the
  centre of mass, :data:`COM_HEIGHT_PER_FOOT_LENGTH` foot lengths (COM at 0.55 of stature and foot length 0.152 of
  stature, Winter 2009, Biomechanics and Motor Control of Human Movement, table 4.1); ``y_com`` is the belt's
  centre line; ``x_com`` of each step is the force-weighted mean of its COP's ``x`` (Gauss-Legendre quadrature over
  the stance), so every step's anterior-posterior impulse is zero (braking, then propulsion: constant belt speed).
  Standing feet carry no horizontal force.
- Free moment ``Tz`` = 0, so ``Mz = sum(x Fy - y Fx)`` over the feet on the plate.

A plate sums the feet on it (single belt: both; split belts: the left foot on the left belt ``_l``, the right on
``_r``), per channel: ``Fx Fy Fz``, ``Mx = sum(y Fz)``, ``My = -sum(x Fz)``, ``Mz``, ``COPx``/``COPy`` (the
force-weighted mean; the plate's centre below :data:`COP_MIN_FZ_N`, as a device's low-load cut) and
``belt_speed`` (m/s, the step's nominal speed; 0 while standing).

Device values add Gaussian noise per channel (SD ``noise_n`` for forces, ``noise_n`` x :data:`MOMENT_ARM_NOISE_MM`
for moments, ``noise_cop_mm``, ``noise_speed_mps``), a pure function of the seed, the channel and the sample
instant rounded to 1 us (batches of any size agree), and an optional zero drift (``drift_n``: a slow sinusoid per
channel, period 60-120 s). Whole blocks are computed at once (no per-sample loops).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from treadlab.drivers.sim import _random as rnd
from treadlab.drivers.sim.params import FEET

__all__ = ["BELTS", "CHANNEL_SETS", "COM_HEIGHT_PER_FOOT_LENGTH", "COP_MIN_FZ_N", "TreadmillModel",
           "TreadmillParams", "channel_names", "force_info"]

BELTS = ("single", "split")
#: Frames of a plate's moments and COP channels (:class:`TreadmillParams` ``moments_about``).
MOMENT_FRAMES = ("treadmill", "belt")
#: Channels of one belt: forces and moments, or forces and centre of pressure; ``belt_speed`` always.
CHANNEL_SETS = {"moments": ("Fx", "Fy", "Fz", "Mx", "My", "Mz", "belt_speed"),
                "cop": ("Fx", "Fy", "Fz", "COPx", "COPy", "belt_speed")}
#: Height of the centre of mass over the belt per foot length: 0.55 / 0.152 (Winter 2009, table 4.1).
COM_HEIGHT_PER_FOOT_LENGTH = 0.55 / 0.152
#: A device reports COP 0 below this vertical force (the low-load cut of treadmill software).
COP_MIN_FZ_N = 20.0
#: Moment noise per newton of force noise (a lever of a typical COP excursion).
MOMENT_ARM_NOISE_MM = 100.0
#: Running surface (length along x, width along y) and the split-belt layout.
SINGLE_SIZE_MM = (1800.0, 500.0)
SPLIT_BELT_WIDTH_MM = 240.0
SPLIT_GAP_MM = 20.0
_QUAD_N = 24
_STREAM_NOISE = 21
_STREAM_DRIFT = 22


@dataclass
class TreadmillParams:
    """What kind of instrumented treadmill is simulated.

    Attributes
    ----------
    belts : {"single", "split"}
        One plate under one belt (both feet), or two belts side by side (left foot ``_l``, right foot ``_r``).
    outputs : {"moments", "cop"}
        Per belt ``Fx Fy Fz Mx My Mz`` or ``Fx Fy Fz COPx COPy``; then ``belt_speed``.
    noise_n : float
        SD of the force noise, N (moments: times :data:`MOMENT_ARM_NOISE_MM`).
    noise_cop_mm, noise_speed_mps : float
        SD of the COP and belt-speed noise.
    drift_n : float
        Amplitude of the slow zero drift of the forces, N (moments: times :data:`MOMENT_ARM_NOISE_MM`; 0 = none).
    moments_about : {"treadmill", "belt"}
        The frame of each plate's moments and COP channels: the treadmill frame (its origin at the centre of the
        running surface; ``origin_mm`` = each belt's centre in it), or each belt's own frame with its origin at
        the belt's surface centre (as Bertec reports each belt; ``origin_mm`` = [0, 0, 0] per belt).
    """

    belts: str = "single"
    outputs: str = "moments"
    noise_n: float = 3.0
    noise_cop_mm: float = 1.0
    noise_speed_mps: float = 0.005
    drift_n: float = 0.0
    moments_about: str = "treadmill"

    def __post_init__(self) -> None:
        if self.moments_about not in MOMENT_FRAMES:
            raise ValueError(f"treadmill moments_about must be one of {MOMENT_FRAMES}, got {self.moments_about!r}")
        if self.belts not in BELTS:
            raise ValueError(f"treadmill belts must be one of {BELTS}, got {self.belts!r}")
        if self.outputs not in CHANNEL_SETS:
            raise ValueError(f"treadmill outputs must be one of {tuple(CHANNEL_SETS)}, got {self.outputs!r}")
        for key in ("noise_n", "noise_cop_mm", "noise_speed_mps", "drift_n"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"treadmill {key} must be >= 0, got {getattr(self, key)!r}")

    @classmethod
    def from_any(cls, value: Any) -> TreadmillParams:
        """From a dict (a spec's JSON), an instance, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        return cls(**dict(value))

    def as_dict(self) -> dict:
        """The parameters as a dict (a spec's JSON)."""
        return asdict(self)


def channel_names(belts: str, outputs: str = "moments") -> list[str]:
    """The wire channels of a treadmill, in order: one belt's set, or the left belt's (``_l``) then the right's."""
    base = CHANNEL_SETS[outputs]
    if belts == "single":
        return list(base)
    return [f"{c}_{s}" for s in ("l", "r") for c in base]


def plate_geometry(belts: str) -> tuple[np.ndarray, np.ndarray]:
    """``origin_mm`` (plates, 3) of each plate's centre in the treadmill frame and ``size_mm`` (plates, 2)."""
    if belts == "single":
        return np.zeros((1, 3)), np.array([SINGLE_SIZE_MM])
    y = (SPLIT_BELT_WIDTH_MM + SPLIT_GAP_MM) / 2.0
    origin = np.array([[0.0, y, 0.0], [0.0, -y, 0.0]])  # left belt at +y (the runner's left)
    size = np.array([[SINGLE_SIZE_MM[0], SPLIT_BELT_WIDTH_MM]] * 2)
    return origin, size


def force_info(params: TreadmillParams) -> dict:
    """The kind-specific INFO keys of a simulated treadmill (``channels``, ``belts``, ``origin_mm``, ``size_mm``,
    ``axes``); with split belts ``origin_mm``/``size_mm`` hold one row per plate (left, right).
    """
    origin, size = plate_geometry(params.belts)
    if params.moments_about == "belt":  # each belt's surface centre is its own frame's origin
        origin = np.zeros_like(origin)
    one = params.belts == "single"
    return {"channels": channel_names(params.belts, params.outputs), "belts": params.belts,
            "origin_mm": origin[0].tolist() if one else origin.tolist(),
            "size_mm": size[0].tolist() if one else size.tolist(),
            "axes": {"vertical": "z", "forward": "x"}}


@dataclass
class _Foot:
    """One foot's load at a set of instants (treadmill frame)."""

    fz: np.ndarray
    cop: np.ndarray = field(repr=False)  # (k, 2) x forward, y left; NaN unloaded
    fx: np.ndarray = field(repr=False)
    fy: np.ndarray = field(repr=False)


class TreadmillModel:
    """Plate channels of a simulated instrumented treadmill at given instants (see the module docstring).

    Parameters
    ----------
    gait : GaitModel or ScheduledGait
        The rig's runner.
    params : TreadmillParams or dict or None
    seed : int
        Seed of the noise and drift.
    """

    def __init__(self, gait: Any, params: Any = None, seed: int = 0) -> None:
        self.gait = gait
        self.params = TreadmillParams.from_any(params)
        self.seed = int(seed)
        self.channels = channel_names(self.params.belts, self.params.outputs)
        self.origin_mm, self.size_mm = plate_geometry(self.params.belts)  # belt centres, treadmill frame
        #: Origin of each plate's moment/COP frame in the treadmill frame (the treadmill's, or the belt's centre).
        self.frame_mm = self.origin_mm.copy() if self.params.moments_about == "belt" else np.zeros_like(
            self.origin_mm)
        base = _plain(gait)
        self.foot_length_mm = float(base.params.foot_length_mm)
        self.com_height_mm = COM_HEIGHT_PER_FOOT_LENGTH * self.foot_length_mm
        self._com_cache: dict[tuple[int, int], np.ndarray] = {}

    # ----------------------------------------------------------------------------------- one foot

    def foot(self, foot: str, t_s: np.ndarray) -> _Foot:
        """Noise-free vertical force, COP (treadmill frame) and horizontal forces of one foot."""
        t = np.asarray(t_s, dtype=np.float64)
        if hasattr(self.gait, "before"):  # a runner who changes: each sample from its step's model
            a, b = self._foot_plain(self.gait.before, 0, foot, t), self._foot_plain(self.gait.after, 1, foot, t)
            use = self.gait.sample_after(foot, t)
            pick = lambda x, y: np.where(use.reshape((-1,) + (1,) * (x.ndim - 1)), y, x)  # noqa: E731
            return _Foot(pick(a.fz, b.fz), pick(a.cop, b.cop), pick(a.fx, b.fx), pick(a.fy, b.fy))
        return self._foot_plain(self.gait, 0, foot, t)

    def _foot_plain(self, m: Any, which: int, foot: str, t: np.ndarray) -> _Foot:
        fz = m.vertical_force(foot, t)
        row, cop = self._belt_cop(m, foot, t)
        fx = np.zeros(t.shape)
        fy = np.zeros(t.shape)
        contact = row >= 0
        if np.any(contact):
            x_com = self._com_x(m, which, foot, row[contact])
            h = self.com_height_mm
            fx[contact] = fz[contact] * (x_com - cop[contact, 0]) / h
            fy[contact] = fz[contact] * (0.0 - cop[contact, 1]) / h
        return _Foot(fz, cop, fx, fy)

    @staticmethod
    def belt_cop_mm(m: Any, foot: str, t_s: np.ndarray) -> np.ndarray:
        """COP of ``foot`` in the treadmill frame (mm; x forward, y left; NaN in swing) of a plain GaitModel.

        In stance the foot lies where the step landed and moves backwards with the belt; standing feet stand on
        the still belt with the heel half a foot behind the centre, as on the simulated mat
        (:meth:`GaitModel.heel_on_belt`).
        """
        return TreadmillModel._belt_cop(m, foot, np.asarray(t_s, dtype=np.float64))[1]

    @staticmethod
    def _belt_cop(m: Any, foot: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cop_f = m.cop(foot, t)  # (k, 2): x lateral, y from the heel
        sign = 1.0 if foot == "right" else -1.0
        row, heel = m.heel_on_belt(foot, t)  # along (forward), across (to the right)
        out = np.empty((t.size, 2))
        out[:, 0] = heel[:, 0] + cop_f[:, 1]
        out[:, 1] = -(heel[:, 1] + sign * cop_f[:, 0])
        return row, out  # NaN where cop_f is NaN (swing)

    def _com_x(self, m: Any, which: int, foot: str, rows: np.ndarray) -> np.ndarray:
        """Force-weighted mean COP ``x`` of the stance of each step row (zero anterior-posterior impulse)."""
        out = np.empty(len(rows))
        need = []
        for i, r in enumerate(rows.tolist()):  # per step row (a few per block), not per sample
            hit = self._com_cache.get((which, r))
            if hit is None:
                need.append(i)
            else:
                out[i] = hit
        if need:
            uniq = np.unique(rows[need])
            nodes, weights = np.polynomial.legendre.leggauss(_QUAD_N)
            u = 0.5 * (nodes + 1.0)
            t = (m.step_ic_s[uniq][:, None] + u[None, :] * m.step_contact_s[uniq][:, None]).ravel()
            fz = m.vertical_force(foot, t).reshape(len(uniq), _QUAD_N)
            x = self.belt_cop_mm(m, foot, t)[:, 0].reshape(len(uniq), _QUAD_N)
            x = np.where(np.isfinite(x), x, 0.0)
            com = (fz * x) @ weights / np.maximum(fz @ weights, 1e-9)
            if len(self._com_cache) > 4096:
                self._com_cache.clear()
            for r, c in zip(uniq.tolist(), com.tolist()):
                self._com_cache[(which, r)] = c
            for i in need:
                out[i] = self._com_cache[(which, int(rows[i]))]
        return out

    # ----------------------------------------------------------------------------------- plates

    def belt_speed_mps(self, t_s: np.ndarray) -> np.ndarray:
        """Nominal belt speed at each instant (m/s): the speed of the latest step of either foot, 0 before."""
        m = _plain(self.gait)
        t = np.asarray(t_s, dtype=np.float64)
        row = m.latest_step(None, t)
        return np.where(row >= 0, m.step_speed_mps[np.clip(row, 0, None)], 0.0)

    def plates(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """Noise-free channels by wire name (see :attr:`channels`), each shape (k,)."""
        t = np.asarray(t_s, dtype=np.float64)
        feet = {f: self.foot(f, t) for f in FEET}
        speed = self.belt_speed_mps(t)
        out: dict[str, np.ndarray] = {}
        groups = [("", FEET)] if self.params.belts == "single" else [("_l", ("left",)), ("_r", ("right",))]
        for p, (suffix, on) in enumerate(groups):
            fx0, fy0 = self.frame_mm[p, 0], self.frame_mm[p, 1]  # the moments' origin
            ox, oy = self.origin_mm[p, 0] - fx0, self.origin_mm[p, 1] - fy0  # the belt centre in that frame
            fz = sum(feet[f].fz for f in on)
            fx = sum(feet[f].fx for f in on)
            fy = sum(feet[f].fy for f in on)
            mx = np.zeros(t.shape)
            my = np.zeros(t.shape)
            mz = np.zeros(t.shape)
            for f in on:  # moments about the plate frame's origin (on the surface)
                cx = np.nan_to_num(feet[f].cop[:, 0] - fx0)
                cy = np.nan_to_num(feet[f].cop[:, 1] - fy0)
                mx += cy * feet[f].fz
                my -= cx * feet[f].fz
                mz += cx * feet[f].fy - cy * feet[f].fx
            loaded = fz >= COP_MIN_FZ_N
            with np.errstate(invalid="ignore", divide="ignore"):
                copx = np.where(loaded, -my / fz, ox)
                copy = np.where(loaded, mx / fz, oy)
            values = {"Fx": fx, "Fy": fy, "Fz": fz, "Mx": mx, "My": my, "Mz": mz, "COPx": copx, "COPy": copy,
                      "belt_speed": speed}
            for c in CHANNEL_SETS[self.params.outputs]:
                out[c + suffix] = values[c]
        return out

    def values(self, t_s: np.ndarray) -> np.ndarray:
        """Device values (calibrated units: N, N·mm, mm, m/s), noise and drift added, shape (k, channels)."""
        t = np.asarray(t_s, dtype=np.float64)
        clean = self.plates(t)
        out = np.column_stack([clean[c] for c in self.channels]) if len(t) else np.empty((0, len(self.channels)))
        sd = self._channel_scale(self.params.noise_n, self.params.noise_cop_mm, self.params.noise_speed_mps)
        if len(t) and np.any(sd > 0):
            ticks = np.round(t * 1e6).astype(np.int64)
            out = out + rnd.normal_grid(rnd.key(self.seed, _STREAM_NOISE), ticks, len(self.channels)) * sd
        if len(t) and self.params.drift_n > 0:
            amp = self._channel_scale(self.params.drift_n, 0.0, 0.0)
            ph = rnd.uniform(rnd.key(self.seed, _STREAM_DRIFT), np.arange(2 * len(self.channels)))
            period = 60.0 + 60.0 * ph[: len(self.channels)]
            out = out + amp * np.sin(2.0 * np.pi * (t[:, None] / period + ph[len(self.channels):]))
        if self.params.outputs == "cop":  # the low-load cut applies to what the device measured
            for suffix in [""] if self.params.belts == "single" else ["_l", "_r"]:
                low = out[:, self.channels.index("Fz" + suffix)] < COP_MIN_FZ_N
                p = 1 if suffix == "_r" else 0
                for i, c in enumerate(("COPx", "COPy")):
                    out[low, self.channels.index(c + suffix)] = self.origin_mm[p, i] - self.frame_mm[p, i]
        return out

    def _channel_scale(self, force: float, cop: float, speed: float) -> np.ndarray:
        base = {"F": force, "M": force * MOMENT_ARM_NOISE_MM, "C": cop, "b": speed}
        return np.array([base[c[0]] for c in self.channels])


def _plain(gait: Any) -> Any:
    """The plain GaitModel of a runner (the "before" model of a runner who changes; timing is shared)."""
    return gait.before if hasattr(gait, "before") else gait


#: Counts per calibrated unit of an i32 treadmill: 0.01 N, 0.1 N·mm, 0.01 mm, 0.1 mm/s per count.
I32_GAIN = {"F": 0.01, "M": 0.1, "C": 0.01, "b": 1e-4}


def force_calibration(spec: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (gain, offset) of a simulated treadmill: float32 devices send calibrated values (1, 0); i32
    devices counts of :data:`I32_GAIN` with an amplifier zero offset of up to +-2000 counts (the spec's
    ``calibration`` overrides either).
    """
    names = channel_names(TreadmillParams.from_any(spec.treadmill).belts, TreadmillParams.from_any(
        spec.treadmill).outputs)
    n = len(names)
    cal = spec.calibration or {}
    if spec.dtype == "f32":
        gain, offset = np.ones(n), np.zeros(n)
    else:
        gain = np.array([I32_GAIN[c[0]] for c in names])
        offset = np.round(rng.uniform(-2000, 2000, n))
    if "gain" in cal:
        gain = np.broadcast_to(np.asarray(cal["gain"], dtype=np.float64), (n,)).copy()
    if "offset" in cal:
        offset = np.broadcast_to(np.asarray(cal["offset"], dtype=np.float64), (n,)).copy()
    return gain.astype(np.float32), offset.astype(np.float32)


class ForceSignalSource:
    """Raw values of a simulated treadmill at given true times (the interface of
    :class:`~treadlab.drivers.sim.signals.SignalSource`: ``gait``, ``session_s``, ``raw``).
    """

    def __init__(self, spec: Any, gait: Any, t_epoch_ns: int, gain: np.ndarray, offset: np.ndarray) -> None:
        self.spec = spec
        self.gait = gait
        self.t_epoch_ns = int(t_epoch_ns)
        self.model = TreadmillModel(gait, spec.treadmill, seed=spec.seed)
        self.gain = gain.astype(np.float64)
        self.offset = offset.astype(np.float64)

    def session_s(self, t_ns: np.ndarray) -> np.ndarray:
        """True times (monotonic_ns) on the gait model's clock (s)."""
        return (np.asarray(t_ns, np.int64) - self.t_epoch_ns) / 1e9

    def forces(self, t_ns: np.ndarray) -> np.ndarray:
        """Calibrated channel values (N, N·mm, mm, m/s), shape (k, channels)."""
        return self.model.values(self.session_s(t_ns))

    def raw(self, t_ns: np.ndarray) -> np.ndarray:
        """What the device sends: float32 values, or i32 counts ``value / gain + offset`` (rounded, clipped)."""
        values = self.forces(t_ns)
        if self.spec.dtype == "f32":
            return values.astype("<f4")
        counts = np.round(values / self.gain + self.offset)
        return np.clip(counts, -(2**31), 2**31 - 1).astype("<i4")
