/* treadlab reference firmware: a 16-sensel FSR insole on a Raspberry Pi Pico (RP2040) with a CD74HC4067
 * 16-channel analog multiplexer, protocol v1 over USB CDC.
 *
 * Hardware layer of the portable core (../../core):
 *   link   USB CDC through pico_stdio_usb, raw bytes (putchar_raw, no CR/LF translation); getchar_timeout_us(0)
 *          feeds tl_dev_rx from the main loop
 *   clock  time_us_64(): 1 MHz, 64 bits, from the crystal
 *   scan   the capture hook selects each mux channel (GP2..GP5 = S0..S3), waits 5 us for the FSR divider and the
 *          mux to settle, discards one conversion and keeps the next (ADC0 = GP26, 12 bits)
 * Wiring: docs/firmware.md ("RP2040 insole"). Build with the Pico SDK (not installed on the CI machine, so this
 * port is not built there): see CMakeLists.txt. */
#include <stdio.h>

#include "hardware/adc.h"
#include "hardware/gpio.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "tl_device.h"

#define N_SENSELS 16
#define MUX_S0 2 /* GP2..GP5: S0..S3 */
#define ADC_PIN 26
#ifndef INSOLE_SIDE
#define INSOLE_SIDE "left"
#endif

static tl_dev dev;
static uint16_t captured[N_SENSELS];
static char serial[2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES + 8];

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
    for (uint8_t ch = 0; ch < N_SENSELS; ch++) {
        for (uint8_t b = 0; b < 4; b++)
            gpio_put(MUX_S0 + b, (ch >> b) & 1u);
        busy_wait_us_32(5);
        (void)adc_read(); /* the sample-and-hold still holds the previous channel */
        captured[ch] = adc_read();
    }
}

static void hal_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    for (uint8_t i = 0; i < N_SENSELS; i++)
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

static const uint16_t rates[] = {50, 100, 200, 250, 500, 1000};

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
    snprintf(serial, sizeof serial, "PICO-");
    pico_get_unique_board_id_string(serial + 5, sizeof serial - 5);

    desc.kind = TL_KIND_INSOLE;
    desc.dtype = TL_U16;
    desc.adc_bits = 12;
    desc.clock_hz = 1000000u;
    desc.rates_hz = rates;
    desc.n_rates = sizeof rates / sizeof rates[0];
    desc.rate_hz = 500;
    desc.model = "treadlab ref insole (RP2040 + CD74HC4067)";
    desc.serial = serial;
    desc.firmware = "tl-core 1 (rp2040)";
    desc.unit = TL_UNIT_N;
    desc.side = INSOLE_SIDE;
    desc.sensels = N_SENSELS;
    desc.layout_name = "insole16"; /* or layout_json: the board's own sensel positions */
    desc.max_burst = 50;
    if (tl_dev_init(&dev, &desc, &hal) != 0)
        panic("bad device description");
    for (;;) {
        int c;
        while ((c = getchar_timeout_us(0)) != PICO_ERROR_TIMEOUT)
            tl_dev_rx(&dev, (uint8_t)c);
        tl_dev_poll(&dev);
    }
}
