// Compile-check stand-in for Teensyduino's teensy4 core (Arduino.h, core_pins.h, usb_serial.h; see
// boards/stubs/README.md): only what teensy4_mat calls.
#ifndef TL_STUB_TEENSY_ARDUINO_H
#define TL_STUB_TEENSY_ARDUINO_H
#include <stddef.h>
#include <stdint.h>

#define HIGH 1
#define LOW 0
#define INPUT 0
#define OUTPUT 1
#define A0 (14)
#define A1 (15)

void pinMode(uint8_t pin, uint8_t mode);
void digitalWriteFast(uint8_t pin, uint8_t val);
int analogRead(uint8_t pin);
void analogReadResolution(unsigned int bits);
void analogReadAveraging(unsigned int num);
void delayMicroseconds(uint32_t usec);
uint32_t micros(void);
uint32_t millis(void);

class usb_serial_class {
public:
  void begin(long baud);
  int available();
  int read();
  size_t write(uint8_t c);
  size_t write(const uint8_t *buffer, size_t size);
};
extern usb_serial_class Serial;

void setup(void);
void loop(void);
#endif
