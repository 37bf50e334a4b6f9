/* treadlab board ports: the hardware-independent part of multiplexer and row/column scanning.
 *
 * A board supplies a tl_scan_io (select a multiplexer channel, wait, start a conversion, drive a row electrode)
 * and these functions decide the order, the settling and the discarded conversions. They are plain C99 with no
 * hardware access, so the host unit tests (tests/test_firmware_boards.py, host/board_harness.c) run them against
 * a fake ADC that models a sample-and-hold, a settling multiplexer and ghosting through undriven rows. */
#ifndef TL_SCAN_H
#define TL_SCAN_H

#include <stdint.h>

#include "tl_device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* Put channel ch (0-15) on the select lines S0..S3 of every multiplexer. */
    void (*select)(void *ctx, uint8_t ch);
    /* Busy-wait us microseconds. */
    void (*wait_us)(void *ctx, uint32_t us);
    /* One conversion of ADC input adc (the board maps it to a pin). */
    uint16_t (*adc_read)(void *ctx, uint8_t adc);
    /* Drive row electrode r high (1) or low (0); may be NULL for a port with no rows. */
    void (*row)(void *ctx, uint16_t r, uint8_t high);
    void *ctx;
} tl_scan_io;

/* 16-channel insole: mux channel i is sensel i (layout "insole16", docs/firmware.md "RP2040 insole"). */
#define TL_MUX16_SENSELS 16
#define TL_MUX16_SETTLE_US 5u  /* FSR divider (~10 kOhm) and CD74HC4067 settling after a channel change */
#define TL_MUX16_DUMMY_READS 1 /* the RP2040's sample-and-hold still holds the previous channel */

/* Read the n (<= 16) channels of one multiplexer on ADC input 0, in channel order, into out[0..n-1]: select,
 * wait TL_MUX16_SETTLE_US, discard TL_MUX16_DUMMY_READS conversions, keep the next. */
void tl_mux16_capture(const tl_scan_io *io, uint16_t *out, uint8_t n);

/* Row/column mat: 16 rows driven one at a time, 32 columns through two 16-channel multiplexers (columns 0-15 on
 * ADC input 0, 16-31 on input 1). Sensel order on the wire is row-major: value r * cols + c is row r, column c. */
#define TL_MAT_ROWS 16
#define TL_MAT_COLS 32
#define TL_MAT_SETTLE_US 3u

/* Drive every row low (call once at power-up): a row left floating couples its pressed sensels into the
 * column being read (ghosting). */
void tl_matscan_init(const tl_scan_io *io, uint16_t rows);
/* One frame, streamed value by value into dev (tl_dev_value): for each row, drive it high with all others held
 * low, read every column after TL_MAT_SETTLE_US, drive it low again. */
void tl_matscan_scan(const tl_scan_io *io, tl_dev *dev, uint16_t rows, uint16_t cols);

#ifdef __cplusplus
}
#endif

#endif
