/* treadlab reference firmware: an IMU board (RP2040 + MPU-6050 or MPU-6500 over I2C) speaking protocol v1 over
 * USB CDC, kind "imu" with the wire contract of issue 14 (docs/protocol.md, "IMU devices").
 *
 * This file is the Pico SDK glue only; the register configuration, decoding and scaling (../common/tl_mpu6050.c)
 * and the description (../common/tl_boards.c) are hardware-independent and unit-tested on the host:
 *   link   USB CDC (pico_stdio_usb, raw bytes)
 *   clock  time_us_64(), 1 MHz
 *   scan   the capture hook reads the 14 bytes from ACCEL_XOUT_H (0x3B) in one I2C burst at 400 kHz (~0.4 ms):
 *          accelerometer, temperature (dropped), gyroscope, big-endian i16; sent as ax ay az gx gy gz
 *   ranges RANGE_G (2, 4, 8, 16; default 16) and RANGE_DPS (250, 500, 1000, 2000; default 2000), digital low-pass
 *          184 Hz, internal rate 1 kHz
 * The sensor's axes are the board's frame; the host finds how the board sits on the body. Set PLACEMENT to where
 * the board is worn (pelvis, trunk, tibia_left, tibia_right). Wiring: docs/firmware.md ("IMU board"). Build with
 * the Pico SDK (CMakeLists.txt); `make -C firmware board-check` compiles it against ../stubs. */
#include "hardware/gpio.h"
#include "hardware/i2c.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "tl_boards.h"
#include "tl_device.h"
#include "tl_mpu6050.h"

#ifndef PLACEMENT
#define PLACEMENT "pelvis"
#endif
#ifndef RANGE_G
#define RANGE_G 16
#endif
#ifndef RANGE_DPS
#define RANGE_DPS 2000
#endif
#define SDA_PIN 4
#define SCL_PIN 5

static tl_dev dev;
static int16_t captured[6];
static char serial[2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES + 8] = "IMU-";

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
    uint8_t reg = TL_MPU_ACCEL_XOUT_H, raw[TL_MPU_BURST_BYTES];
    (void)ctx;
    (void)t;
    (void)seq;
    if (i2c_write_blocking(i2c0, TL_MPU_ADDR, &reg, 1, true) != 1 ||
        i2c_read_blocking(i2c0, TL_MPU_ADDR, raw, TL_MPU_BURST_BYTES, false) != TL_MPU_BURST_BYTES)
        tl_mpu6050_fail(captured);
    else
        tl_mpu6050_decode(raw, captured);
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
    *gain = tl_mpu6050_gain(i, RANGE_G, RANGE_DPS);
    *offset = 0.0f;
}

int main(void)
{
    static const tl_hal hal = {hal_write, hal_ticks, hal_scan, hal_calibration, 0, hal_capture};
    static tl_desc desc;
    uint8_t regs[TL_MPU_N_REGS][2];
    stdio_init_all();
    stdio_set_translate_crlf(&stdio_usb, false);
    i2c_init(i2c0, 400 * 1000);
    gpio_set_function(SDA_PIN, GPIO_FUNC_I2C);
    gpio_set_function(SCL_PIN, GPIO_FUNC_I2C);
    gpio_pull_up(SDA_PIN);
    gpio_pull_up(SCL_PIN);
    if (tl_mpu6050_config(RANGE_G, RANGE_DPS, regs) != 0)
        panic("RANGE_G or RANGE_DPS is not a range of the MPU-6050");
    for (uint8_t i = 0; i < TL_MPU_N_REGS; i++)
        if (i2c_write_blocking(i2c0, TL_MPU_ADDR, regs[i], 2, false) != 2)
            panic("no MPU-6050 at 0x68");
    pico_get_unique_board_id_string(serial + 4, sizeof serial - 4);
    tl_board_imu_desc(&desc, serial, PLACEMENT, RANGE_G, RANGE_DPS);
    if (tl_dev_init(&dev, &desc, &hal) != 0)
        panic("bad device description");
    for (;;) {
        int c;
        while ((c = getchar_timeout_us(0)) != PICO_ERROR_TIMEOUT)
            tl_dev_rx(&dev, (uint8_t)c);
        tl_dev_poll(&dev);
    }
}
