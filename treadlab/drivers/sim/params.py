"""Parameters of the simulated runner, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from treadlab.errors import ConfigError
from treadlab.vocabulary import FEET, STRIKE_CLASSES

#: Nominal strike index (% of foot length from the heel) of each class (Cavanagh & Lafortune 1980 classes:
#: rearfoot < 33.3, midfoot 33.3-66.7, forefoot > 66.7).
NOMINAL_STRIKE_INDEX_PCT = {"rearfoot": 15.0, "midfoot": 50.0, "forefoot": 85.0}
#: A step's strike index stays at least this far from a class boundary.
CLASS_MARGIN_PCT = 8.0


class GaitParamsError(ConfigError, ValueError):
    """Invalid runner parameters (a :class:`~treadlab.errors.ConfigError` that is also a ``ValueError``)."""


def strike_class(strike_index_pct: float) -> str:
    """Strike class of a strike index: rearfoot < 33.3 <= midfoot <= 66.7 < forefoot."""
    if strike_index_pct < 100.0 / 3.0:
        return "rearfoot"
    if strike_index_pct <= 200.0 / 3.0:
        return "midfoot"
    return "forefoot"


def _near_boundary(si: float) -> bool:
    return min(abs(si - 100.0 / 3.0), abs(si - 200.0 / 3.0)) < CLASS_MARGIN_PCT


@dataclass
class RunnerParams:
    """A simulated runner (or walker) on a treadmill at constant speed.

    Parameters
    ----------
    speed_mps : float
        Belt speed.
    cadence_spm : float
        Steps per minute (both feet).
    body_mass_kg : float
    contact_time_ms : float
        Mean contact time of the two feet.
    strike_left, strike_right : {"rearfoot", "midfoot", "forefoot"}
        Foot-strike class of each foot.
    strike_index_left_pct, strike_index_right_pct : float or None
        Override the nominal strike index (COP at initial contact, % of foot length); the class follows from it.
        Must be at least 8 points from a class boundary (33.3, 66.7).
    loading_rate_asym_pct, contact_time_asym_pct, peak_force_asym_pct : float
        Symmetry index ``(R - L) / (0.5 * (R + L)) * 100`` of AVLR/VILR, contact time and peak force.
    variability_pct : float
        Step-to-step SD of step time and contact time, in % (the strike index varies by 2/3 of it, in points).
    noise_n : float
        SD of the Gaussian noise on each insole sensel, N.
    swing_offset_n : float
        Total drifting baseline of each insole, N (0 = none; 30 gives a 20-40 N baseline in swing).
    walking : bool
        Walking: double support (contact longer than a step), double-hump force, no impact transient.
    seed : int
        Seed of every random value.
    foot_length_mm : float
        Foot length (COP and footprint).
    step_width_mm : float
        Lateral distance between the heels of the left and right foot on the belt.
    change : dict or None
        A change over time, e.g. ``{"start_s": 60, "stop_s": 150, "after": {"strike_left": "midfoot"}}``: the
        runner moves to the ``after`` parameters between ``start_s`` and ``stop_s``
        (:mod:`treadlab.drivers.sim.change`).
    stride_cv_pct : float
        Coefficient of variation of stride time, % (0-20): every step gets its own duration (irregular pace;
        :mod:`treadlab.drivers.sim.schedule`).
    stumble_pct : float
        Share of steps, %, that are stumbles: a short step (0.55 x) then a long one (1.45 x).
    stand_s, walk_s : float
        The session starts with ``stand_s`` of standing on the still belt (both feet loaded, weight shifting), then
        ``walk_s`` of walking at ``walk_cadence_spm``, ``walk_contact_time_ms`` and ``walk_speed_mps``, then runs.
    pelvic_drop_left_deg, pelvic_drop_right_deg, pelvic_rotation_deg, pelvic_tilt_deg, pelvic_tilt_range_deg,
    trunk_lean_deg, vertical_oscillation_mm, pta_left_g, pta_right_g, shock_attenuation_left_pct,
    shock_attenuation_right_pct, heading_wander_deg : float
        The body seen by simulated IMUs (:mod:`treadlab.drivers.sim.imu_model`, running values; walking scales
        them): contralateral pelvic drop in the stance of each foot, pelvic rotation range per stride, pelvic tilt
        mean (anterior positive, relative to standing) and range, trunk forward lean, vertical oscillation of the
        pelvis per step, peak tibial acceleration per side (g along the shank, gravity included), shock
        attenuation from tibia to pelvis per side, and the slow wander of the runner's heading (amplitude).
    """

    speed_mps: float = 3.0
    cadence_spm: float = 170.0
    body_mass_kg: float = 70.0
    contact_time_ms: float = 260.0
    strike_left: str = "rearfoot"
    strike_right: str = "rearfoot"
    strike_index_left_pct: float | None = None
    strike_index_right_pct: float | None = None
    loading_rate_asym_pct: float = 0.0
    contact_time_asym_pct: float = 0.0
    peak_force_asym_pct: float = 0.0
    variability_pct: float = 3.0
    noise_n: float = 1.5
    swing_offset_n: float = 0.0
    walking: bool = False
    seed: int = 0
    foot_length_mm: float = 260.0
    step_width_mm: float = 90.0
    change: dict | None = None
    stride_cv_pct: float = 0.0
    stumble_pct: float = 0.0
    stand_s: float = 0.0
    walk_s: float = 0.0
    walk_cadence_spm: float = 110.0
    walk_contact_time_ms: float = 650.0
    walk_speed_mps: float = 1.3
    # ---- simulated IMUs (drivers/sim/imu_model.py)
    pelvic_drop_left_deg: float = 5.0
    pelvic_drop_right_deg: float = 5.0
    pelvic_rotation_deg: float = 10.0
    pelvic_tilt_deg: float = 4.0
    pelvic_tilt_range_deg: float = 5.0
    trunk_lean_deg: float = 8.0
    vertical_oscillation_mm: float = 80.0
    pta_left_g: float = 8.0
    pta_right_g: float = 8.0
    shock_attenuation_left_pct: float = 65.0
    shock_attenuation_right_pct: float = 65.0
    heading_wander_deg: float = 3.0

    def __post_init__(self) -> None:
        ranges = {
            "speed_mps": (0.2, 12.0),
            "cadence_spm": (40.0, 260.0),
            "body_mass_kg": (15.0, 300.0),
            "contact_time_ms": (80.0, 2500.0),
            "loading_rate_asym_pct": (-50.0, 50.0),
            "contact_time_asym_pct": (-30.0, 30.0),
            "peak_force_asym_pct": (-50.0, 50.0),
            "variability_pct": (0.0, 10.0),
            "noise_n": (0.0, 1000.0),
            "swing_offset_n": (0.0, 1000.0),
            "foot_length_mm": (150.0, 350.0),
            "step_width_mm": (0.0, 400.0),
            "stride_cv_pct": (0.0, 20.0),
            "stumble_pct": (0.0, 20.0),
            "stand_s": (0.0, 86400.0),
            "walk_s": (0.0, 86400.0),
            "walk_cadence_spm": (40.0, 200.0),
            "walk_contact_time_ms": (200.0, 2500.0),
            "walk_speed_mps": (0.2, 3.0),
            "pelvic_drop_left_deg": (0.0, 20.0),
            "pelvic_drop_right_deg": (0.0, 20.0),
            "pelvic_rotation_deg": (0.0, 40.0),
            "pelvic_tilt_deg": (-20.0, 30.0),
            "pelvic_tilt_range_deg": (0.0, 20.0),
            "trunk_lean_deg": (-15.0, 40.0),
            "vertical_oscillation_mm": (5.0, 200.0),
            "pta_left_g": (1.5, 60.0),
            "pta_right_g": (1.5, 60.0),
            "shock_attenuation_left_pct": (0.0, 95.0),
            "shock_attenuation_right_pct": (0.0, 95.0),
            "heading_wander_deg": (0.0, 20.0),
        }
        for name, (lo, hi) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise GaitParamsError(f"runner parameter {name} must be a number, got {value!r}")
            if not lo <= value <= hi:
                raise GaitParamsError(f"runner parameter {name} must be in {lo:g}..{hi:g}, got {value:g}")
        for foot in FEET:
            strike = getattr(self, f"strike_{foot}")
            if strike not in STRIKE_CLASSES:
                raise GaitParamsError(
                    f"runner parameter strike_{foot} must be one of {', '.join(STRIKE_CLASSES)}, got {strike!r}"
                )
            si = getattr(self, f"strike_index_{foot}_pct")
            if si is not None:
                if isinstance(si, bool) or not isinstance(si, int | float) or not 2.0 <= si <= 95.0:
                    raise GaitParamsError(f"runner parameter strike_index_{foot}_pct must be in 2..95, got {si!r}")
                if _near_boundary(si):
                    raise GaitParamsError(
                        f"runner parameter strike_index_{foot}_pct={si:g} is within {CLASS_MARGIN_PCT:g} points of "
                        "a class boundary (33.3, 66.7); choose a value clearly inside one class"
                    )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise GaitParamsError(f"runner parameter seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.walking, bool):
            raise GaitParamsError(f"runner parameter walking must be true or false, got {self.walking!r}")
        self._check_timing()
        if self.change is not None:
            from treadlab.drivers.sim.change import check_change

            check_change(self.change)
            dataclasses.replace(self, change=None, **self.change["after"])  # the "after" runner must be valid
        if self.walk_s > 0:
            self.walking_phase()  # validated on construction: the walking phase's cadence and contact time

    @property
    def scheduled(self) -> bool:
        """Irregular timing or gait phases: steps from :mod:`treadlab.drivers.sim.schedule`."""
        return self.stride_cv_pct > 0 or self.stumble_pct > 0 or self.stand_s > 0 or self.walk_s > 0

    def walking_phase(self) -> RunnerParams:
        """The runner of the walking phase (``walk_*`` parameters, walking, no phases of its own)."""
        return dataclasses.replace(self, walking=True, cadence_spm=self.walk_cadence_spm,
                                   contact_time_ms=self.walk_contact_time_ms, speed_mps=self.walk_speed_mps,
                                   stride_cv_pct=0.0, stumble_pct=0.0, stand_s=0.0, walk_s=0.0)

    def _check_timing(self) -> None:
        step_ms = 60e3 / self.cadence_spm
        v = self.variability_pct / 100.0
        ct_max = self.contact_time_ms * (1.0 + abs(self.contact_time_asym_pct) / 200.0) * (1.0 + 2.5 * v)
        gap_min = step_ms * (1.0 - 2.5 * v * math.sqrt(2.0))  # shortest step between two initial contacts
        ct_max_nominal = self.contact_time_ms * (1.0 + abs(self.contact_time_asym_pct) / 200.0)
        if not self.walking and ct_max_nominal >= 0.95 * step_ms:
            raise GaitParamsError(
                f"contact_time_ms={self.contact_time_ms:g} leaves no flight phase at cadence_spm="
                f"{self.cadence_spm:g} (step time {step_ms:.0f} ms, including asymmetry); "
                "shorten the contact time or set walking = true"
            )
        ct_min_nominal = self.contact_time_ms * (1.0 - abs(self.contact_time_asym_pct) / 200.0)
        if self.walking and not (ct_min_nominal > 1.02 * step_ms and ct_max < 2.0 * gap_min):
            raise GaitParamsError(
                f"walking needs a contact time between one and two step times (step time {step_ms:.0f} ms at "
                f"cadence_spm={self.cadence_spm:g}, with margins for asymmetry and variability), got "
                f"contact_time_ms={self.contact_time_ms:g}"
            )

    def strike_index_pct(self, foot: str) -> float:
        """Nominal strike index of ``foot`` (the override, or the class's nominal value)."""
        si = getattr(self, f"strike_index_{foot}_pct")
        return float(si) if si is not None else NOMINAL_STRIKE_INDEX_PCT[getattr(self, f"strike_{foot}")]

    @classmethod
    def from_dict(cls, table: dict) -> RunnerParams:
        """Build from a table (a rig file's ``[runner]`` section); unknown keys raise :class:`GaitParamsError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - names)
        if unknown:
            raise GaitParamsError(
                f"unknown runner parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**table)

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for INFO messages and session metadata)."""
        return dataclasses.asdict(self)
