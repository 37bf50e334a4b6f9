// treadlab reference firmware: a 16 x 32 velostat pressure mat on a Teensy 4.0/4.1, protocol v1 over USB.
//
// Hardware layer of the portable core (../../core; `make -C firmware board-sources` copies it into src/, which
// the Arduino IDE compiles with the sketch):
//   link   USB serial (480 Mbit/s; the baud rate is ignored), Serial.write / Serial.read
//   clock  micros(), extended to 64 bits: 1 MHz
//   scan   row-column scanning, streamed as it goes (a frame is never buffered): each row electrode in turn is
//          driven to 3.3 V while the others are held at 0 V (less ghosting than leaving them floating); the 32
//          column electrodes go through two CD74HC4067 multiplexers (S0..S3 shared) to A0 and A1, each column
//          with a 10 kOhm resistor to GND, and are read at 12 bits after a 3-us settling time
// Wiring: docs/firmware.md ("Teensy mat"). Built with Teensyduino (Arduino IDE or arduino-cli with the Teensy
// core), which is not on the CI machine, so this port is not built there.
#include "src/tl_device.h"

static const uint8_t ROW_PINS[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 28, 29, 30};
static const uint8_t SELECT_PINS[4] = {31, 32, 33, 34};  // S0..S3 of both multiplexers
static const uint8_t COL_ADC[2] = {A0, A1};               // SIG of multiplexer 0 (cols 0-15) and 1 (16-31)
static const uint16_t ROWS = 16, COLS = 32;

static tl_dev dev;
static tl_desc desc;
static const uint16_t rates[] = {50, 100, 200};

static void hal_write(void *, const uint8_t *bytes, uint16_t n) { Serial.write(bytes, n); }

static uint64_t hal_ticks(void *) {
  static uint32_t last;
  static uint64_t high;
  uint32_t now = micros();
  if (now < last) high += 1ull << 32;  // micros() wraps every 71 minutes
  last = now;
  return high | now;
}

static void select_channel(uint8_t ch) {
  for (uint8_t b = 0; b < 4; b++) digitalWriteFast(SELECT_PINS[b], (ch >> b) & 1);
}

static void hal_scan(void *, tl_dev *d, uint64_t, uint32_t) {
  for (uint8_t r = 0; r < ROWS; r++) {
    digitalWriteFast(ROW_PINS[r], HIGH);
    for (uint8_t c = 0; c < COLS; c++) {
      select_channel(c & 15);
      delayMicroseconds(3);
      tl_dev_value(d, analogRead(COL_ADC[c >> 4]));
    }
    digitalWriteFast(ROW_PINS[r], LOW);
  }
}

void setup() {
  static const tl_hal hal = {hal_write, hal_ticks, hal_scan, nullptr, nullptr, nullptr};
  Serial.begin(0);
  analogReadResolution(12);
  analogReadAveraging(1);
  for (uint8_t r = 0; r < ROWS; r++) {
    pinMode(ROW_PINS[r], OUTPUT);
    digitalWriteFast(ROW_PINS[r], LOW);
  }
  for (uint8_t b = 0; b < 4; b++) pinMode(SELECT_PINS[b], OUTPUT);
  desc.kind = TL_KIND_MAT;
  desc.dtype = TL_U16;
  desc.adc_bits = 12;
  desc.clock_hz = 1000000u;
  desc.rates_hz = rates;
  desc.n_rates = sizeof rates / sizeof rates[0];
  desc.rate_hz = 100;
  desc.model = "treadlab ref mat (Teensy 4 + 2x CD74HC4067)";
  desc.serial = "TEENSY-MAT-0001";  // per mat: unique (e.g. from the Teensy's MAC or serial number)
  desc.firmware = "tl-core 1 (teensy4)";
  desc.unit = TL_UNIT_KPA;
  desc.rows = ROWS;
  desc.cols = COLS;
  desc.pitch_um[0] = desc.pitch_um[1] = 15000u;  // 15 mm electrodes
  desc.belt_axis = "rows";
  desc.max_burst = 20;
  if (tl_dev_init(&dev, &desc, &hal) != 0)
    for (;;) {}
}

void loop() {
  while (Serial.available() > 0) tl_dev_rx(&dev, (uint8_t)Serial.read());
  tl_dev_poll(&dev);
}
