/* treadlab reference firmware: a 16-sensel FSR insole on a Raspberry Pi Pico (RP2040) with a CD74HC4067
 * 16-channel analog multiplexer, protocol v1 over USB CDC.
 *
 * This file is the Pico SDK glue only; what the board is and how it scans are hardware-independent and unit-tested
 * on the host (../common: tl_boards.c for the description, tl_scan.c for the multiplexer sequencing):
 *   link   USB CDC through pico_stdio_usb, raw bytes (putchar_raw, no CR/LF translation); getchar_timeout_us(0)
 *          feeds tl_dev_rx from the main loop
 *   clock  time_us_64(): 1 MHz, 64 bits, from the crystal
 *   scan   the capture hook selects each mux channel (GP2..GP5 = S0..S3), waits 5 us for the FSR divider and the
 *          mux to settle, discards one conversion and keeps the next (ADC0 = GP26, 12 bits); mux channel i is
 *          sensel i of the "insole16" layout
 * Wiring: docs/firmware.md ("RP2040 insole"). Build with the Pico SDK: see CMakeLists.txt. `make -C firmware
 * board-check` compiles this file against the stand-in headers in ../stubs (no SDK needed). */
#include "hardware/adc.h"
#include "hardware/gpio.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "tl_boards.h"
#include "tl_device.h"
#include "tl_scan.h"

#define MUX_S0 2 /* GP2..GP5: S0..S3 */
#define ADC_PIN 26
#ifndef INSOLE_SIDE
#define INSOLE_SIDE "left"
#endif

static tl_dev dev;
static uint16_t captured[TL_MUX16_SENSELS];
static char serial[2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES + 8] = "PICO-";

static void io_select(void *ctx, uint8_t ch)
{
    (void)ctx;
    for (uint8_t b = 0; b < 4; b++)
        gpio_put(MUX_S0 + b, (ch >> b) & 1u);
}

static void io_wait_us(void *ctx, uint32_t us)
{
    (void)ctx;
    busy_wait_us_32(us);
}

static uint16_t io_adc_read(void *ctx, uint8_t adc)
{
    (void)ctx;
    (void)adc; /* one multiplexer, on ADC0 (selected once in main) */
    return adc_read();
}

static const tl_scan_io io = {io_select, io_wait_us, io_adc_read, 0, 0};

static void hal_write(void *ctx, const uint8_t *bytes, uint16_t n)
{
    (void)ctx;
    for (uint16_t i = 0; i < n; i++)
        putchar_raw(bytes[i]);
}

static uint64_t hal_ticks(void *ctx)
{
    (void)ctx;
    return time_us_64();
}

static void hal_capture(void *ctx, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    tl_mux16_capture(&io, captured, TL_MUX16_SENSELS);
}

static void hal_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    for (uint8_t i = 0; i < TL_MUX16_SENSELS; i++)
        tl_dev_value(d, captured[i]);
}

/* Per-sensel calibration measured for this insole (gain in N per count, offset in counts); defaults: raw. */
static void hal_calibration(void *ctx, uint32_t i, float *gain, float *offset)
{
    (void)ctx;
    (void)i;
    *gain = 1.0f;
    *offset = 0.0f;
}

int main(void)
{
    static const tl_hal hal = {hal_write, hal_ticks, hal_scan, hal_calibration, 0, hal_capture};
    static tl_desc desc;
    stdio_init_all();
    stdio_set_translate_crlf(&stdio_usb, false);
    adc_init();
    adc_gpio_init(ADC_PIN);
    adc_select_input(0);
    for (uint8_t b = 0; b < 4; b++) {
        gpio_init(MUX_S0 + b);
        gpio_set_dir(MUX_S0 + b, GPIO_OUT);
    }
    pico_get_unique_board_id_string(serial + 5, sizeof serial - 5);
    tl_board_insole16_desc(&desc, serial, INSOLE_SIDE);
    if (tl_dev_init(&dev, &desc, &hal) != 0)
        panic("bad device description");
    for (;;) {
        int c;
        while ((c = getchar_timeout_us(0)) != PICO_ERROR_TIMEOUT)
            tl_dev_rx(&dev, (uint8_t)c);
        tl_dev_poll(&dev);
    }
}
