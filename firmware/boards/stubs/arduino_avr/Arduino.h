// Compile-check stand-in for the Arduino AVR core's Arduino.h (Print, HardwareSerial, wiring; see
// boards/stubs/README.md): only what fsr_line_insole calls. `make -C firmware arduino` builds the sketch for real
// with Debian's arduino-core-avr.
#ifndef TL_STUB_ARDUINO_AVR_H
#define TL_STUB_ARDUINO_AVR_H
#include <stddef.h>
#include <stdint.h>

#define A0 (14)
#define A1 (15)
#define A2 (16)
#define A3 (17)
#define A4 (18)
#define A5 (19)

class __FlashStringHelper;
#define F(string_literal) (reinterpret_cast<const __FlashStringHelper *>(string_literal))

int analogRead(uint8_t pin);
unsigned long micros(void);
unsigned long millis(void);

class Print {
public:
  size_t write(uint8_t c);
  size_t write(const uint8_t *buffer, size_t size);
  size_t print(const __FlashStringHelper *s);
  size_t print(const char s[]);
  size_t print(char c);
  size_t print(unsigned char n, int base = 10);
  size_t print(int n, int base = 10);
  size_t print(unsigned int n, int base = 10);
  size_t print(long n, int base = 10);
  size_t print(unsigned long n, int base = 10);
  size_t println(const __FlashStringHelper *s);
  size_t println(const char s[]);
  size_t println(void);
};

class HardwareSerial : public Print {
public:
  void begin(unsigned long baud);
};
extern HardwareSerial Serial;

void setup(void);
void loop(void);
#endif
