/* Compile-check stand-in for the Pico SDK's pico/stdlib.h (boards/stubs/README.md): only what the ports call. */
#ifndef TL_STUB_PICO_STDLIB_H
#define TL_STUB_PICO_STDLIB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned int uint;

/* pico_platform / pico_base */
#define PICO_OK 0
#define PICO_ERROR_TIMEOUT (-1)
#define PICO_ERROR_GENERIC (-2)
void panic(const char *fmt, ...) __attribute__((noreturn));

/* pico_stdio */
typedef struct stdio_driver stdio_driver_t;
extern stdio_driver_t stdio_usb; /* pico_stdio_usb */
bool stdio_init_all(void);
void stdio_set_translate_crlf(stdio_driver_t *driver, bool translate);
int putchar_raw(int c);
int getchar_timeout_us(uint32_t timeout_us);

/* pico_time / hardware_timer */
uint64_t time_us_64(void);
void busy_wait_us_32(uint32_t delay_us);
void sleep_ms(uint32_t ms);
#endif
