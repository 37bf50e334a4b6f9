/* treadlab board ports: the boards' device descriptions (tl_boards.h). */
#include <string.h>

#include "tl_boards.h"
#include "tl_scan.h"

static const uint16_t insole_rates[] = {50, 100, 200, 250, 500, 1000};
static const uint16_t mat_rates[] = {50, 100, 200};
static const uint16_t imu_rates[] = {100, 200, 250, 500, 1000};
static const char *const imu_channels[] = {"ax", "ay", "az", "gx", "gy", "gz"};

void tl_board_insole16_desc(tl_desc *desc, const char *serial, const char *side)
{
    memset(desc, 0, sizeof *desc);
    desc->kind = TL_KIND_INSOLE;
    desc->dtype = TL_U16;
    desc->adc_bits = 12;
    desc->clock_hz = 1000000u;
    desc->rates_hz = insole_rates;
    desc->n_rates = sizeof insole_rates / sizeof insole_rates[0];
    desc->rate_hz = 500;
    desc->model = "treadlab ref insole (RP2040 + CD74HC4067)";
    desc->serial = serial;
    desc->firmware = "tl-core 1 (rp2040)";
    desc->unit = TL_UNIT_N;
    desc->side = side;
    desc->sensels = TL_MUX16_SENSELS;
    desc->layout_name = "insole16"; /* or layout_json: the board's own sensel positions */
    desc->max_burst = 50;
}

void tl_board_mat_desc(tl_desc *desc, const char *serial)
{
    memset(desc, 0, sizeof *desc);
    desc->kind = TL_KIND_MAT;
    desc->dtype = TL_U16;
    desc->adc_bits = 12;
    desc->clock_hz = 1000000u;
    desc->rates_hz = mat_rates;
    desc->n_rates = sizeof mat_rates / sizeof mat_rates[0];
    desc->rate_hz = 100;
    desc->model = "treadlab ref mat (Teensy 4 + 2x CD74HC4067)";
    desc->serial = serial;
    desc->firmware = "tl-core 1 (teensy4)";
    desc->unit = TL_UNIT_KPA;
    desc->rows = TL_MAT_ROWS;
    desc->cols = TL_MAT_COLS;
    desc->pitch_um[0] = desc->pitch_um[1] = 15000u; /* 15 mm electrodes */
    desc->belt_axis = "rows";
    desc->max_burst = 20;
}

void tl_board_imu_desc(tl_desc *desc, const char *serial, const char *placement, uint16_t range_g,
                       uint16_t range_dps)
{
    memset(desc, 0, sizeof *desc);
    desc->kind = TL_KIND_IMU;
    desc->dtype = TL_I16;
    desc->adc_bits = 16;
    desc->clock_hz = 1000000u;
    desc->rates_hz = imu_rates;
    desc->n_rates = sizeof imu_rates / sizeof imu_rates[0];
    desc->rate_hz = 500;
    desc->model = "treadlab ref imu (RP2040 + MPU-6050)";
    desc->serial = serial;
    desc->firmware = "tl-core 1 (rp2040)";
    desc->unit = TL_UNIT_IMU;
    desc->channels = imu_channels;
    desc->n_channels = 6;
    desc->placement = placement;
    desc->range_g = range_g;
    desc->range_dps = range_dps;
    desc->max_burst = 50;
}

uint64_t tl_ticks_extend32(tl_ticks32 *s, uint32_t now)
{
    if (now < s->last)
        s->high += (uint64_t)1 << 32; /* the counter wrapped */
    s->last = now;
    return s->high | now;
}
