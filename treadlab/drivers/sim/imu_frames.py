"""Frames of the simulated IMUs: Cardan orientation, angular velocity, specific force, the earth's field.

The world frame: x forward (running direction), y to the runner's left, z up. A segment's orientation is
``R = Rz(rotation) Rx(obliquity) Ry(tilt)`` (Cardan angles relative to standing, Baker 2001); a sensor aligned with
the segment reads the specific force ``R^T (a + g e_z) / g``, the angular velocity in the segment frame, and
``R^T B`` of the earth's field ``B``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from treadlab.drivers.sim.imu_shapes import Jet
from treadlab.vocabulary import G_MPS2

__all__ = ["Kinematics", "axis_z", "body_rate", "earth_field_ut", "rot_matrices"]

_EARTH = {"horizontal_ut": 19.5, "down_ut": 44.0, "azimuth_deg": 40.0}


def earth_field_ut() -> np.ndarray:
    """The earth's magnetic field in the world frame (uT)."""
    az = np.radians(_EARTH["azimuth_deg"])
    return np.array([_EARTH["horizontal_ut"] * np.cos(az), _EARTH["horizontal_ut"] * np.sin(az), -_EARTH["down_ut"]])


def rot_matrices(psi: np.ndarray, phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``Rz(psi) Rx(phi) Ry(theta)``, shape (n, 3, 3) (radians)."""
    cz, sz, cx, sx, cy, sy = np.cos(psi), np.sin(psi), np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
    R = np.empty(psi.shape + (3, 3))
    R[:, 0, 0] = cz * cy - sz * sx * sy
    R[:, 0, 1] = -sz * cx
    R[:, 0, 2] = cz * sy + sz * sx * cy
    R[:, 1, 0] = sz * cy + cz * sx * sy
    R[:, 1, 1] = cz * cx
    R[:, 1, 2] = sz * sy - cz * sx * cy
    R[:, 2, 0] = -cx * sy
    R[:, 2, 1] = sx
    R[:, 2, 2] = cx * cy
    return R


def axis_z(psi: Jet, phi: Jet, theta: Jet) -> tuple[Jet, Jet, Jet]:
    """The segment's z axis in the world, ``R e_z``, as jets."""
    cz, sz, cx, sx, cy, sy = psi.cos(), psi.sin(), phi.cos(), phi.sin(), theta.cos(), theta.sin()
    return cz * sy + sz * sx * cy, sz * sy - cz * sx * cy, cx * cy


def body_rate(psi: Jet, phi: Jet, theta: Jet) -> np.ndarray:
    """Angular velocity in the segment frame (rad/s) from the Cardan angles' rates, shape (n, 3)."""
    sx, cx, sy, cy = np.sin(phi.v), np.cos(phi.v), np.sin(theta.v), np.cos(theta.v)
    return np.column_stack([
        -psi.d * sy * cx + phi.d * cy,
        psi.d * sx + theta.d,
        psi.d * cy * cx + phi.d * sy,
    ])


@dataclasses.dataclass
class Kinematics:
    """Orientation and sensor position of one segment at sample instants (world frame, SI units).

    Attributes
    ----------
    psi, phi, theta : Jet
        Rotation (heading included), obliquity and tilt (rad) with their rates.
    pos : tuple of Jet
        Sensor position x, y, z (m) with velocity and acceleration.
    """

    psi: Jet
    phi: Jet
    theta: Jet
    pos: tuple[Jet, Jet, Jet]

    def __post_init__(self) -> None:
        self.psi, self.phi, self.theta = self.psi.full(), self.phi.full(), self.theta.full()
        self.pos = tuple(p.full() for p in self.pos)

    def rotation(self) -> np.ndarray:
        """Segment orientation, shape (n, 3, 3)."""
        return rot_matrices(self.psi.v, self.phi.v, self.theta.v)

    def specific_force_g(self) -> np.ndarray:
        """Accelerometer of a sensor aligned with the segment: ``R^T (a + g e_z) / g``, shape (n, 3)."""
        f = np.column_stack([self.pos[0].dd, self.pos[1].dd, self.pos[2].dd + G_MPS2])
        return np.einsum("nji,nj->ni", self.rotation(), f) / G_MPS2

    def gyro_dps(self) -> np.ndarray:
        """Gyroscope of a sensor aligned with the segment (deg/s), shape (n, 3)."""
        return np.degrees(body_rate(self.psi, self.phi, self.theta))

    def mag_ut(self) -> np.ndarray:
        """Magnetometer of a sensor aligned with the segment (uT), shape (n, 3)."""
        return np.einsum("nji,j->ni", self.rotation(), earth_field_ut())
