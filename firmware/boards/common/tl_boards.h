/* treadlab board ports: what each documented board is (its tl_desc), kept apart from the SDK glue in the ports'
 * main.c / .ino so that the host tests build the same description and push samples through the same core. */
#ifndef TL_BOARDS_H
#define TL_BOARDS_H

#include <stdint.h>

#include "tl_device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* rp2040_insole_mux16: 16 FSRs through a CD74HC4067, u16 12-bit counts, layout "insole16", 500 Hz. */
void tl_board_insole16_desc(tl_desc *desc, const char *serial, const char *side);
/* teensy4_mat: 16 x 32 velostat mat, u16 12-bit counts, 15 mm pitch, rows along the belt, 100 Hz. */
void tl_board_mat_desc(tl_desc *desc, const char *serial);
/* rp2040_imu_mpu6050: ax ay az gx gy gz, i16, at placement with these full scales, 500 Hz. */
void tl_board_imu_desc(tl_desc *desc, const char *serial, const char *placement, uint16_t range_g,
                       uint16_t range_dps);

/* A 32-bit microsecond counter (Arduino micros(), wrapping every 71 minutes) extended to the core's 64-bit
 * non-decreasing ticks. Call often enough to see every wrap (at least once per 71 minutes: the main loop does). */
typedef struct {
    uint32_t last;
    uint64_t high;
} tl_ticks32;
uint64_t tl_ticks_extend32(tl_ticks32 *s, uint32_t now);

#ifdef __cplusplus
}
#endif

#endif
