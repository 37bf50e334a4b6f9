"""Device drivers: protocol v1 (binary insoles and mats), the line protocol, and simulated devices.

Drivers receive their transport (a pyserial port object); they never open ports themselves.
"""
