// treadlab line-protocol insole: an Arduino (Uno, Nano, Pro Mini) reading FSRs on its analog pins.
//
// Prints one line per sample, "t,v1,...,vN" (docs/protocol.md, line protocol): t in milliseconds since power-up
// (millis(), unwrapped by the host after 49 days), the values raw 10-bit ADC counts. Samples fall due on an
// absolute schedule (micros()), so the rate does not drift with the time the printing takes. Lines starting with
// '#' are comments. The matching rig-file entry (docs/rig.md):
//
//   [[device]]
//   name = "insole_left"
//   port = "/dev/ttyACM0"
//   protocol = "line"
//   baudrate = 115200
//   side = "left"
//   sensels = 6
//   rate_hz = 100
//   time_unit = "ms"
//
// Wiring (docs/firmware.md): each FSR from 5 V to its analog pin, and a 10 kOhm resistor from that pin to GND.
// This sketch takes no commands; boards that should speak protocol v1 use the firmware core (firmware/core).
// The schedule and the line format are in tl_line.c (plain C, unit-tested on the host); the IDE compiles it with
// the sketch.
#include "tl_line.h"

const uint8_t PINS[] = {A0, A1, A2, A3, A4, A5};
const uint8_t N_SENSELS = sizeof(PINS) / sizeof(PINS[0]);
const unsigned long RATE_HZ = 100;
const unsigned long PERIOD_US = 1000000UL / RATE_HZ;

uint32_t next_us;

void setup() {
  Serial.begin(115200);
  Serial.print(F("# treadlab line insole, "));
  Serial.print(N_SENSELS);
  Serial.print(F(" sensels, "));
  Serial.print(RATE_HZ);
  Serial.println(F(" Hz"));
  next_us = micros();
}

void loop() {
  if (!tl_line_due(micros(), &next_us, PERIOD_US)) return;
  uint32_t t = millis();
  uint16_t v[N_SENSELS];
  for (uint8_t i = 0; i < N_SENSELS; i++) v[i] = analogRead(PINS[i]);
  char line[TL_LINE_MAX(N_SENSELS)];
  size_t n = tl_line_format(line, sizeof line, t, v, N_SENSELS);
  Serial.write((const uint8_t *)line, n);
}
