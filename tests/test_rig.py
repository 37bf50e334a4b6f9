"""Rig files: the shipped examples load, and every mistake is one ConfigError naming file, device and key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from treadlab.config import RIGS_DIR
from treadlab.errors import ConfigError
from treadlab.lab.rig import DEVICE_KEYS, example_rigs, load_rig

LINE_OK = """
[[device]]
name = "insole_right"
port = "/dev/ttyUSB1"
protocol = "line"
side = "right"
sensels = 16
rate_hz = 100
time_unit = "ms"
layout = "insole16"
"""


def _write(tmp_path, text: str, name: str = "rig.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_example_rigs_load():
    names = {p.name for p in example_rigs()}
    assert {"usb-two-insoles-mat.toml", "arduino-fsr-line.toml", "network-serial.toml", "moticon-opengo.toml",
            "wifi-udp-insoles.toml"} <= names
    rig = load_rig(RIGS_DIR / "usb-two-insoles-mat.toml")
    assert [d.name for d in rig.devices] == ["insole_left", "insole_right", "mat"]
    assert rig.session == {"body_mass_kg": 70.0, "treadmill_speed_mps": 3.0}
    assert rig.devices[2].required is False and rig.devices[0].rate_hz == 500 and rig.devices[0].side == "left"
    assert rig.text == (RIGS_DIR / "usb-two-insoles-mat.toml").read_text()
    line = load_rig("arduino-fsr-line")  # a shipped rig by name
    d = line.device("insole_right")
    assert d.protocol == "line" and d.kind == "insole" and d.baudrate == 115200 and d.time_unit == "ms"
    assert len(d.calibration["offset"]) == 8 and d.layout["foot_length_mm"] == 260.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.text = ""
    moticon = load_rig("moticon-opengo")  # two entries share the one UDP stream of both insoles
    assert [(d.protocol, d.port, d.side) for d in moticon.devices] == [("moticon", "udp://:8888", "left"),
                                                                       ("moticon", "udp://:8888", "right")]
    wifi = load_rig("wifi-udp-insoles")
    assert [d.protocol for d in wifi.devices] == ["binary", "binary", "willowec-mat"]
    assert wifi.devices[2].baudrate == 115200 and wifi.devices[2].kind == "mat"


def test_full_line_device_and_defaults(tmp_path):
    rig = load_rig(_write(tmp_path, "[session]\nbody_mass_kg = 81\n" + LINE_OK))
    d = rig.devices[0]
    assert rig.session == {"body_mass_kg": 81.0}
    assert (d.side, d.sensels, d.rate_hz, d.layout, d.baudrate, d.required) == ("right", 16, 100, "insole16",
                                                                                 921600, True)
    assert d.calibration == {"unit": "N", "gain": 1.0, "offset": 0.0}


@pytest.mark.parametrize(
    "text,message",
    [
        (LINE_OK.replace('sensels = 16\n', ''),
         "rig.toml: device 1 ('insole_right'): line-protocol devices need 'sensels'"),
        (LINE_OK.replace('time_unit = "ms"', 'time_unit = "s"'),
         "device 1 ('insole_right'): 'time_unit' must be 'ms' or 'us', got 's'"),
        (LINE_OK.replace('sensels = 16', 'sensels = 8'),
         "device 1 ('insole_right'): layout has 16 sensels, but 'sensels' is 8"),
        (LINE_OK.replace('layout = "insole16"', 'layout = "insole7"'), "unknown layout 'insole7'"),
        (LINE_OK + 'calibration = { unit = "N", gain = [1.0, 2.0] }',
         "calibration: gain must be a number or a list of 16 numbers"),
        (LINE_OK + 'calibration = { unit = "lb" }', "unit must be 'N' or 'kPa'"),
        (LINE_OK + 'colour = "red"', "unknown key 'colour'; allowed: " + ", ".join(DEVICE_KEYS)),
        (LINE_OK + LINE_OK, "device 2 ('insole_right'): name already used by device 1"),
        (LINE_OK + LINE_OK.replace('"insole_right"', '"insole_left"'),
         "device 2 ('insole_left'): port /dev/ttyUSB1 already used by device 1 ('insole_right')"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nprotocol = "serial"\n', "'protocol' must be 'binary' or 'line'"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nrate_hz = "fast"\n', "'rate_hz' must be an integer 1-65535"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nrequired = 1\n', "'required' must be a boolean"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\ntime_unit = "ms"\n', "only apply to line-protocol devices"),
        ('[[device]]\nname = "a"\n', "device 1 ('a'): missing 'port'"),
        ('[[device]]\nname = "my insole"\nport = "/dev/x"\n', "'name' must be a name of letters"),
        ('[session]\nbody_mass_kg = "heavy"\n' + LINE_OK, "[session]: body_mass_kg must be a number"),
        ('[session]\nweight = 70\n' + LINE_OK, "[session]: unknown key 'weight'; allowed: body_mass_kg"),
        ('[sessions]\n' + LINE_OK, "unknown table or key 'sessions'"),
        ('[session]\nbody_mass_kg = 70.0\n', "no [[device]] entries"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nkind = "mat"\n' + LINE_OK.replace("insole_right", "b") +
         'kind = "mat"\n', "device 2 ('b'): line-protocol devices are insoles"),
    ],
)
def test_invalid_rig_files_name_file_device_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_rig(_write(tmp_path, text))
    assert message in str(exc.value)
    assert str(exc.value).startswith(str(tmp_path / "rig.toml"))


def test_toml_syntax_error_gives_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"rig.toml: not valid TOML: .*line 3"):
        load_rig(_write(tmp_path, '[[device]]\nname = "a"\nport = /dev/x\n'))


def test_missing_rig_file(tmp_path):
    with pytest.raises(ConfigError, match="rig file .*nope.toml not found"):
        load_rig(tmp_path / "nope.toml")


def test_lab_devices_with_a_bad_rig_prints_one_line(tmp_path):
    rig = _write(tmp_path, LINE_OK.replace('sensels = 16\n', ''))
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "devices", "--rig", str(rig)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "line-protocol devices need 'sensels'" in lines[0]


def test_lab_devices_probes_every_device_and_reports_the_missing_one(tmp_path, capsys):
    import argparse

    from tests.fake_device import FakeSpec, LineSource, PtyFake
    from treadlab.lab.commands import devices

    with PtyFake(FakeSpec(sensels=16, rate_hz=200, serial="L-1")) as left, \
            PtyFake(line_source=LineSource(n=16, rate_hz=100)) as right, PtyFake(FakeSpec(side="left")) as wrong:
        rig = _write(tmp_path, f"""
[[device]]
name = "insole_left"
port = "{left.path}"
side = "left"
rate_hz = 500
{LINE_OK.replace("/dev/ttyUSB1", right.path)}
[[device]]
name = "mat"
port = "{tmp_path / 'ttyACM9'}"
[[device]]
name = "insole_spare"
port = "{wrong.path}"
side = "right"
""")
        code = devices.run(argparse.Namespace(rig=str(rig), simulate=False, line_insoles=False, seconds=0.5))
    out = capsys.readouterr().out.splitlines()
    assert code == 3
    left_lines = [ln for ln in out if ln.startswith("insole_left")]
    assert left_lines and "insole left 16 sensels" in left_lines[0] and "serial L-1" in left_lines[0]
    assert "500 Hz" in left_lines[0]  # the rig's rate was set
    streamed = [ln for ln in out if ln.strip().startswith("streamed")]
    assert len(streamed) == 2 and all(" 0 errors" in ln for ln in streamed)
    rates = [float(ln.split(" samples, ")[1].split("/s")[0]) for ln in streamed]
    assert 250 < rates[0] < 750 and 50 < rates[1] < 150
    missing = [ln for ln in out if ln.startswith("mat")]
    assert len(missing) == 1 and "MISSING" in missing[0] and "port not found" in missing[0]
    failed = [ln for ln in out if ln.startswith("insole_spare")]
    assert len(failed) == 1 and "FAILED" in failed[0] and "side is 'left', the rig file says 'right'" in failed[0]
    assert out[-1] == "2 of 4 devices missing or failing"


def test_lab_devices_simulate_end_to_end():
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "devices", "--simulate", "--seconds", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "all 3 devices answered and streamed"
    truth = [ln for ln in lines if ln.strip().startswith("simulator took")]
    assert len(truth) == 3 and all(ln.endswith("(0 missing)") for ln in truth)
    assert sum(" 0 errors" in ln for ln in lines) == 3


def test_lab_devices_list_ports(capsys):
    import argparse

    from serial.tools import list_ports

    from treadlab.lab.commands import devices

    assert devices.run(argparse.Namespace(list_ports=True, rig=None, simulate=False, seconds=1.0)) == 0
    out = capsys.readouterr().out
    present = [p.device for p in list_ports.comports()]
    assert all(f"{d}: " in out for d in present) and (present or "no serial ports found" in out)
