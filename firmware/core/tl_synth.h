/* treadlab reference firmware: synthetic test signals, integer arithmetic only (same values on every target).
 *
 * Each value is a pure function of the device time t (ticks of clock_hz) and the value's index, so a test on the
 * host can compute what a device must have sent (tests/firmware_signals.py is the Python twin of this file). */
#ifndef TL_SYNTH_H
#define TL_SYNTH_H

#include <stdint.h>

#include "tl_device.h"

#ifdef __cplusplus
extern "C" { /* the core is C; board sketches may be C++ (Arduino) */
#endif

/* Milliseconds into the synthetic 1-s stride at device time t; the right foot is half a stride later. */
uint32_t tl_synth_stride_ms(uint64_t t, uint32_t clock_hz, int right);
/* Insole sensel i of n: a 400-ms stance that rolls from sensel 0 (heel) to sensel n-1 (toe). */
int32_t tl_synth_insole(uint32_t ms, uint32_t i, uint32_t n, uint32_t full_scale);
/* Mat cell (r, c): a 5-row band that moves along the rows once per stride. */
int32_t tl_synth_mat(uint32_t ms, uint32_t r, uint32_t c, uint32_t rows, uint32_t cols, uint32_t full_scale);
/* IMU channel named name ("ax" ... "mz") in counts for the given full-scale ranges. */
int32_t tl_synth_imu(uint32_t ms, const char *name, uint32_t range_g, uint32_t range_dps, uint32_t range_ut);
/* A whole sample of the device described by d: pushes every value with tl_dev_value. */
void tl_synth_scan(tl_dev *dev, uint64_t t);

#ifdef __cplusplus
}
#endif

#endif
