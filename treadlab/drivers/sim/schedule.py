"""The step schedule of a session with irregular timing and gait phases: standing, walking, running.

Used by :class:`treadlab.drivers.sim.gait.GaitModel` when any of ``stride_cv_pct``, ``stumble_pct``, ``stand_s``
or ``walk_s`` is set (otherwise the model keeps its fixed step grid ``ic = k T + jitter``).

Phases (session clock): the runner stands on the still belt until ``stand_s`` (both feet loaded, the weight
shifting slowly between them), then walks ``walk_s`` (about ``walk_s / T_walk`` steps, double support), then
runs. The left foot lifts first at ``stand_s`` and lands with step ``k = 0``; the right foot stays loaded until
the left has landed (double support), then lifts for step ``k = 1``. Without standing, steps extend back before
zero with the same rules.

Timing: each step ``k`` has its own duration ``s_k`` (initial contact ``k`` to ``k + 1``), the phase's nominal
step time times a pace factor ``1 + sigma z_k`` (``z_k`` a standard normal clipped at 2, ``sigma`` chosen so
that a stride of two steps has a coefficient of variation of ``stride_cv_pct``) and the ``variability_pct``
jitter; ``ic`` is their running sum. A stumble at step ``k`` (probability ``stumble_pct`` per step, never two in
a row) makes the step into it short (``STUMBLE_SHORT`` x) and the next one long (``STUMBLE_LONG`` x); no step is
shorter than ``MIN_STEP_FRAC`` of its nominal time. Contact times follow the time the foot carries the body:
running, the time to the next contact of the other foot (so a flight phase stays); walking, to the next contact
of the same foot (so double support stays). Every value is a pure function of ``(seed, k)`` and the parameters.
"""

from __future__ import annotations

import numpy as np

from treadlab.drivers.sim import _random as rnd

__all__ = ["MIN_STEP_FRAC", "STUMBLE_LONG", "STUMBLE_SHORT", "Schedule", "build_schedule"]

STUMBLE_SHORT = 0.55
STUMBLE_LONG = 1.45
MIN_STEP_FRAC = 0.4
#: SD of a standard normal clipped at +-2.
_CLIPPED_SD = 0.9420
_STREAMS = {"pace": 11, "stumble": 12, "jitter": 13, "contact": 14}


class Schedule:
    """Arrays of the steps ``k_lo..k_hi`` (attributes ``k``, ``foot`` (0 left, 1 right), ``ic``, ``ct``,
    ``phase`` (0 running, 1 walking), ``support`` (time the step carries the body: its share of impulse, s),
    ``stumble`` (bool), ``step_time`` (from the previous contact, s)), the standing period: ``stand_end`` per
    foot (s; -inf without standing), and ``first_ic`` (initial contact of step 0).
    """

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def _phase_arrays(k: np.ndarray, n_walk: int, has_walk: bool) -> np.ndarray:
    if not has_walk:
        return np.zeros(len(k), dtype=np.int64)
    return np.where(k < n_walk, 1, 0).astype(np.int64)


def build_schedule(p, step_time_s: tuple[float, float], contact_s: tuple[np.ndarray, np.ndarray],
                   t_lo: float, t_hi: float) -> Schedule:
    """The steps overlapping ``[t_lo, t_hi]``.

    Parameters
    ----------
    p : RunnerParams
    step_time_s : (running, walking)
        Nominal step times.
    contact_s : (running, walking)
        Nominal contact time of each foot (arrays of 2: left, right).
    t_lo, t_hi : float
        Window on the session clock.
    """
    T = np.array(step_time_s, dtype=np.float64)  # index by phase: 0 running, 1 walking
    has_walk = p.walk_s > 0
    n_walk = int(round(p.walk_s / T[1])) if has_walk else 0
    t_min = float(T.min()) * MIN_STEP_FRAC * STUMBLE_SHORT
    standing = p.stand_s > 0
    origin = float(p.stand_s)
    phase0 = 1 if has_walk else 0
    ct0 = float(contact_s[phase0].mean())
    # The first step lands a swing after the left foot lifted at stand_s.
    first_ic = origin + max(2.0 * T[phase0] - ct0, 0.3 * T[phase0]) if standing else 0.0
    k_lo = 0 if standing else int(np.floor((min(t_lo, 0.0) - 3.0) / t_min)) - 4
    k_hi = int(np.ceil(max(t_hi - first_ic, 0.0) / t_min)) + 4
    k = np.arange(k_lo, k_hi + 4, dtype=np.int64)  # three extra steps: contacts look ahead
    phase = _phase_arrays(k, n_walk, has_walk)
    seed = p.seed
    sigma = p.stride_cv_pct / 100.0 * np.sqrt(2.0) / _CLIPPED_SD
    z = np.clip(rnd.normal(rnd.key(seed, _STREAMS["pace"]), k), -2.0, 2.0)
    v = p.variability_pct / 100.0
    zj = np.clip(rnd.normal(rnd.key(seed, _STREAMS["jitter"]), k), -2.5, 2.5)
    s = T[phase] * (1.0 + sigma * z) * (1.0 + v * zj)
    stumble = np.zeros(len(k), dtype=bool)
    if p.stumble_pct > 0:
        u = rnd.uniform(rnd.key(seed, _STREAMS["stumble"]), k)
        hit = u < p.stumble_pct / 100.0
        stumble[1:] = hit[1:] & ~hit[:-1]  # never two in a row
        if standing:
            stumble[k <= 1] = False
        s[:-1] = np.where(stumble[1:], s[:-1] * STUMBLE_SHORT, s[:-1])  # the step into the stumble is short
        s = np.where(stumble, s * STUMBLE_LONG, s)  # the one after it long
    s = np.maximum(s, MIN_STEP_FRAC * T[phase])
    # Initial contacts: running sums of the step durations from k = 0 at first_ic.
    i0 = int(np.flatnonzero(k == 0)[0]) if (k == 0).any() else 0
    ic = np.empty(len(k))
    ic[i0:] = first_ic + np.concatenate([[0.0], np.cumsum(s[i0:-1])])
    if i0 > 0:
        ic[:i0] = first_ic - np.cumsum(s[:i0][::-1])[::-1]
    foot = (k & 1).astype(np.int64)
    # Contact time: the time this foot carries the body, times the foot's nominal duty.
    s_next = np.append(s[1:], s[-1])
    walk = (phase == 1) | bool(p.walking)
    support = np.where(walk, 0.5 * (s + s_next), s)
    ct_nom = np.where(phase == 1, contact_s[1][foot], contact_s[0][foot])
    zc = np.clip(rnd.normal(rnd.key(seed, _STREAMS["contact"]), k), -2.5, 2.5)
    ct = ct_nom * (support / T[phase]) * (1.0 + v * zc)
    lo = np.where(walk, s + 0.03 * T[phase], 0.0)  # walking keeps double support
    hi = np.where(walk, s + s_next, s) - 0.02 * T[phase]  # ... and ends before the foot lands again
    ct = np.clip(ct, lo, hi)
    stand_end = np.full(2, -np.inf)
    if standing:
        # Left lifts at stand_s; right stays loaded until the left's double support with it has passed.
        ds = max(ct0 - T[phase0], 0.08)
        stand_end = np.array([origin, first_ic + ds])
    sel = slice(0, len(k) - 3)
    keep = (ic[sel] + ct[sel] > t_lo) & (ic[sel] < t_hi)
    idx = np.flatnonzero(keep)
    return Schedule(k=k[idx], foot=foot[idx], ic=ic[idx], ct=ct[idx], phase=phase[idx], support=support[idx],
                    stumble=stumble[idx], step_time=(ic - np.concatenate([[ic[0] - s[0]], ic[:-1]]))[idx],
                    stand_end=stand_end, first_ic=first_ic)


def standing_force(t_s: np.ndarray, foot: int, stand_end: np.ndarray, first_ic: float, bw_n: float,
                   seed: int) -> np.ndarray:
    """Vertical force of a standing foot (N; 0 after its standing ends).

    Both feet share body weight, the left's share ``0.5 + 0.12 sin(2 pi t / 3.7 s + phase)`` (slow weight
    shifting); over the 0.4 s before ``stand_s`` the weight moves onto the right foot, which carries it alone
    until the left lands (``first_ic``) and hands it over (a half cosine) by its own lift-off.
    """
    t = np.asarray(t_s, dtype=np.float64)
    phase = 2.0 * np.pi * float(rnd.uniform(rnd.key(seed, 15), np.array([0]))[0])
    share_left = 0.5 + 0.12 * np.sin(2.0 * np.pi * t / 3.7 + phase)
    lift = stand_end[0]
    ramp = np.clip((lift - t) / 0.4, 0.0, 1.0)
    share_left = share_left * 0.5 * (1.0 - np.cos(np.pi * ramp))
    if foot == 0:
        return np.where(t < lift, bw_n * share_left, 0.0)
    end = stand_end[1]
    hand = np.clip((end - t) / max(end - first_ic, 1e-3), 0.0, 1.0)
    right = np.where(t < first_ic, bw_n * (1.0 - np.where(t < lift, share_left, 0.0)),
                     bw_n * 0.5 * (1.0 - np.cos(np.pi * hand)))
    return np.where(t < end, right, 0.0)
