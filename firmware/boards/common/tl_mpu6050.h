/* treadlab board ports: the InvenSense MPU-6050 / MPU-6500 as an imu (docs/protocol.md "IMU devices"),
 * independent of the I2C driver: the register writes that configure it, the decoding of its 14-byte burst from
 * ACCEL_XOUT_H and the scaling the host applies (INFO range_g / range_dps, CALIBRATION unit "imu").
 * Register map and full-scale codes: the MPU-6000/6050 Register Map and Descriptions, rev. 4.2. */
#ifndef TL_MPU6050_H
#define TL_MPU6050_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TL_MPU_ADDR 0x68      /* AD0 low (0x69 with AD0 high) */
#define TL_MPU_SMPLRT_DIV 0x19
#define TL_MPU_CONFIG 0x1A
#define TL_MPU_GYRO_CONFIG 0x1B
#define TL_MPU_ACCEL_CONFIG 0x1C
#define TL_MPU_ACCEL_XOUT_H 0x3B
#define TL_MPU_PWR_MGMT_1 0x6B
#define TL_MPU_BURST_BYTES 14 /* ax ay az temp gx gy gz, big-endian i16 */
#define TL_MPU_N_REGS 5       /* register writes of tl_mpu6050_config */

/* The register writes (reg, value) that wake the sensor and set these full scales (range_g 2, 4, 8 or 16;
 * range_dps 250, 500, 1000 or 2000), DLPF 184 Hz, internal rate 1 kHz. Returns 0, or -1 for a range the sensor
 * does not have. */
int tl_mpu6050_config(uint16_t range_g, uint16_t range_dps, uint8_t regs[TL_MPU_N_REGS][2]);
/* The burst from ACCEL_XOUT_H to the wire's values ax ay az gx gy gz (the temperature word dropped). */
void tl_mpu6050_decode(const uint8_t raw[TL_MPU_BURST_BYTES], int16_t out[6]);
/* A failed I2C read: every value INT16_MIN (visible, never a stale sample). */
void tl_mpu6050_fail(int16_t out[6]);
/* Gain of channel i (0-2: g per count, 3-5: deg/s per count): full scale / 32768. */
float tl_mpu6050_gain(uint32_t i, uint16_t range_g, uint16_t range_dps);

#ifdef __cplusplus
}
#endif

#endif
