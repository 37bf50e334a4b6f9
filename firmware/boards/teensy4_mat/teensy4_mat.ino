// treadlab reference firmware: a 16 x 32 velostat pressure mat on a Teensy 4.1, protocol v1 over USB.
//
// This sketch is the Teensyduino glue only; the scan order and ghosting handling (../common/tl_scan.c) and the
// description (../common/tl_boards.c) are hardware-independent and unit-tested on the host. `make -C firmware
// board-sources` copies them and the core into src/, which the Arduino IDE compiles with the sketch:
//   link   USB serial (480 Mbit/s; the baud rate is ignored), Serial.write / Serial.read
//   clock  micros(), extended to 64 bits: 1 MHz
//   scan   row-column scanning, streamed as it goes (a frame is never buffered): each row electrode in turn is
//          driven to 3.3 V while the others are held at 0 V (less ghosting than leaving them floating); the 32
//          column electrodes go through two CD74HC4067 multiplexers (S0..S3 shared) to A0 and A1, each column
//          with a 10 kOhm resistor to GND, and are read at 12 bits after a 3-us settling time; value r * 32 + c
//          on the wire is row r, column c
// Wiring: docs/firmware.md ("Teensy mat"). Built with Teensyduino (Arduino IDE or arduino-cli with the Teensy
// core); `make -C firmware board-check` compiles it against ../stubs.
#include "src/tl_boards.h"
#include "src/tl_device.h"
#include "src/tl_scan.h"

static const uint8_t ROW_PINS[TL_MAT_ROWS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 28, 29, 30};
static const uint8_t SELECT_PINS[4] = {31, 32, 33, 34};  // S0..S3 of both multiplexers
static const uint8_t COL_ADC[2] = {A0, A1};               // SIG of multiplexer 0 (cols 0-15) and 1 (16-31)

static tl_dev dev;
static tl_desc desc;

static void io_select(void *, uint8_t ch) {
  for (uint8_t b = 0; b < 4; b++) digitalWriteFast(SELECT_PINS[b], (ch >> b) & 1);
}
static void io_wait_us(void *, uint32_t us) { delayMicroseconds(us); }
static uint16_t io_adc_read(void *, uint8_t adc) { return (uint16_t)analogRead(COL_ADC[adc]); }
static void io_row(void *, uint16_t r, uint8_t high) { digitalWriteFast(ROW_PINS[r], high ? HIGH : LOW); }

static const tl_scan_io io = {io_select, io_wait_us, io_adc_read, io_row, nullptr};

static void hal_write(void *, const uint8_t *bytes, uint16_t n) { Serial.write(bytes, n); }

static uint64_t hal_ticks(void *) {
  static tl_ticks32 clock;  // micros() wraps every 71 minutes
  return tl_ticks_extend32(&clock, micros());
}

static void hal_scan(void *, tl_dev *d, uint64_t, uint32_t) { tl_matscan_scan(&io, d, TL_MAT_ROWS, TL_MAT_COLS); }

void setup() {
  static const tl_hal hal = {hal_write, hal_ticks, hal_scan, nullptr, nullptr, nullptr};
  Serial.begin(0);
  analogReadResolution(12);
  analogReadAveraging(1);
  for (uint8_t r = 0; r < TL_MAT_ROWS; r++) pinMode(ROW_PINS[r], OUTPUT);
  tl_matscan_init(&io, TL_MAT_ROWS);
  for (uint8_t b = 0; b < 4; b++) pinMode(SELECT_PINS[b], OUTPUT);
  // per mat: a unique serial (e.g. from the Teensy's MAC or serial number)
  tl_board_mat_desc(&desc, "TEENSY-MAT-0001");
  if (tl_dev_init(&dev, &desc, &hal) != 0)
    for (;;) {}
}

void loop() {
  while (Serial.available() > 0) tl_dev_rx(&dev, (uint8_t)Serial.read());
  tl_dev_poll(&dev);
}
