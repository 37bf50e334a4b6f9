/* treadlab reference firmware: an IMU board (RP2040 + MPU-6050 or MPU-6500 over I2C) speaking protocol v1 over
 * USB CDC, kind "imu" with the wire contract of issue 14 (docs/protocol.md, "IMU devices").
 *
 *   link   USB CDC (pico_stdio_usb, raw bytes)
 *   clock  time_us_64(), 1 MHz
 *   scan   the capture hook reads the 14 bytes from ACCEL_XOUT_H (0x3B) in one I2C burst at 400 kHz (~0.4 ms):
 *          accelerometer, temperature (dropped), gyroscope, big-endian i16; sent as ax ay az gx gy gz
 *   ranges +/-16 g and +/-2000 deg/s, digital low-pass 184 Hz, internal rate 1 kHz
 * The sensor's axes are the board's frame; the host finds how the board sits on the body. Set PLACEMENT to where
 * the board is worn (pelvis, trunk, tibia_left, tibia_right). Wiring: docs/firmware.md ("IMU board"). Build with
 * the Pico SDK (not on the CI machine, so not built there). */
#include <stdio.h>

#include "hardware/i2c.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "tl_device.h"

#ifndef PLACEMENT
#define PLACEMENT "pelvis"
#endif
#define MPU_ADDR 0x68
#define SDA_PIN 4
#define SCL_PIN 5
#define RANGE_G 16
#define RANGE_DPS 2000

static tl_dev dev;
static int16_t captured[6];
static char serial[2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES + 8];

static void mpu_write(uint8_t reg, uint8_t value)
{
    uint8_t b[2] = {reg, value};
    i2c_write_blocking(i2c0, MPU_ADDR, b, 2, false);
}

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
    static const uint8_t order[6] = {0, 1, 2, 4, 5, 6}; /* skip the temperature word */
    uint8_t reg = 0x3B, raw[14];
    (void)ctx;
    (void)t;
    (void)seq;
    if (i2c_write_blocking(i2c0, MPU_ADDR, &reg, 1, true) != 1 ||
        i2c_read_blocking(i2c0, MPU_ADDR, raw, 14, false) != 14) {
        for (uint8_t i = 0; i < 6; i++)
            captured[i] = INT16_MIN; /* a failed read is visible, never a stale value */
        return;
    }
    for (uint8_t i = 0; i < 6; i++)
        captured[i] = (int16_t)((raw[2 * order[i]] << 8) | raw[2 * order[i] + 1]);
}

static void hal_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    for (uint8_t i = 0; i < 6; i++)
        tl_dev_value(d, captured[i]);
}

/* value = gain * (raw - offset): g for a*, deg/s for g* (offsets: the board's bias, measured at rest). */
static void hal_calibration(void *ctx, uint32_t i, float *gain, float *offset)
{
    (void)ctx;
    *gain = i < 3 ? RANGE_G / 32768.0f : RANGE_DPS / 32768.0f;
    *offset = 0.0f;
}

static const uint16_t rates[] = {100, 200, 250, 500, 1000};
static const char *const channels[] = {"ax", "ay", "az", "gx", "gy", "gz"};

int main(void)
{
    static const tl_hal hal = {hal_write, hal_ticks, hal_scan, hal_calibration, 0, hal_capture};
    static tl_desc desc;
    stdio_init_all();
    stdio_set_translate_crlf(&stdio_usb, false);
    i2c_init(i2c0, 400 * 1000);
    gpio_set_function(SDA_PIN, GPIO_FUNC_I2C);
    gpio_set_function(SCL_PIN, GPIO_FUNC_I2C);
    gpio_pull_up(SDA_PIN);
    gpio_pull_up(SCL_PIN);
    mpu_write(0x6B, 0x01); /* PWR_MGMT_1: awake, PLL on the gyroscope's X axis */
    mpu_write(0x1A, 0x01); /* CONFIG: DLPF 184 Hz, internal rate 1 kHz */
    mpu_write(0x19, 0x00); /* SMPLRT_DIV: 1 kHz */
    mpu_write(0x1B, 0x18); /* GYRO_CONFIG: +/-2000 deg/s */
    mpu_write(0x1C, 0x18); /* ACCEL_CONFIG: +/-16 g */
    snprintf(serial, sizeof serial, "IMU-");
    pico_get_unique_board_id_string(serial + 4, sizeof serial - 4);

    desc.kind = TL_KIND_IMU;
    desc.dtype = TL_I16;
    desc.adc_bits = 16;
    desc.clock_hz = 1000000u;
    desc.rates_hz = rates;
    desc.n_rates = sizeof rates / sizeof rates[0];
    desc.rate_hz = 500;
    desc.model = "treadlab ref imu (RP2040 + MPU-6050)";
    desc.serial = serial;
    desc.firmware = "tl-core 1 (rp2040)";
    desc.unit = TL_UNIT_IMU;
    desc.channels = channels;
    desc.n_channels = 6;
    desc.placement = PLACEMENT;
    desc.range_g = RANGE_G;
    desc.range_dps = RANGE_DPS;
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
