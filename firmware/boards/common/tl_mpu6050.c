/* treadlab board ports: MPU-6050 configuration, decoding and scaling (tl_mpu6050.h). */
#include "tl_mpu6050.h"

static int fs_code(uint16_t range, uint16_t base)
{
    for (int code = 0; code < 4; code++)
        if (range == (uint16_t)(base << code))
            return code;
    return -1;
}

int tl_mpu6050_config(uint16_t range_g, uint16_t range_dps, uint8_t regs[TL_MPU_N_REGS][2])
{
    int afs = fs_code(range_g, 2), fs = fs_code(range_dps, 250);
    if (afs < 0 || fs < 0)
        return -1;
    regs[0][0] = TL_MPU_PWR_MGMT_1;   regs[0][1] = 0x01;     /* awake, PLL on the gyroscope's X axis */
    regs[1][0] = TL_MPU_CONFIG;       regs[1][1] = 0x01;     /* DLPF 184 Hz, gyroscope output 1 kHz */
    regs[2][0] = TL_MPU_SMPLRT_DIV;   regs[2][1] = 0x00;     /* 1 kHz / (1 + 0) */
    regs[3][0] = TL_MPU_GYRO_CONFIG;  regs[3][1] = (uint8_t)(fs << 3);  /* FS_SEL, bits 4:3 */
    regs[4][0] = TL_MPU_ACCEL_CONFIG; regs[4][1] = (uint8_t)(afs << 3); /* AFS_SEL, bits 4:3 */
    return 0;
}

void tl_mpu6050_decode(const uint8_t raw[TL_MPU_BURST_BYTES], int16_t out[6])
{
    static const uint8_t word[6] = {0, 1, 2, 4, 5, 6}; /* word 3 is the temperature */
    for (uint8_t i = 0; i < 6; i++) {
        uint16_t u = (uint16_t)(((uint16_t)raw[2 * word[i]] << 8) | raw[2 * word[i] + 1]);
        out[i] = (int16_t)(u >= 0x8000u ? (int32_t)u - 65536 : (int32_t)u);
    }
}

void tl_mpu6050_fail(int16_t out[6])
{
    for (uint8_t i = 0; i < 6; i++)
        out[i] = INT16_MIN;
}

float tl_mpu6050_gain(uint32_t i, uint16_t range_g, uint16_t range_dps)
{
    return (float)(i < 3 ? range_g : range_dps) / 32768.0f;
}
