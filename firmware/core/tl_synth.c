/* treadlab reference firmware: synthetic test signals (see tl_synth.h). */
#include "tl_synth.h"

uint32_t tl_synth_stride_ms(uint64_t t, uint32_t clock_hz, int right)
{
    uint32_t ms = (uint32_t)((t / clock_hz) % 1000u * 1000u + (t % clock_hz) * 1000u / clock_hz) % 1000u;
    return right ? (ms + 500u) % 1000u : ms;
}

int32_t tl_synth_insole(uint32_t ms, uint32_t i, uint32_t n, uint32_t full_scale)
{
    uint32_t offset = n > 1 ? i * 200u / (n - 1u) : 0u;
    uint32_t p = (ms + 1000u - offset) % 1000u;
    if (p >= 400u)
        return 0;
    return (int32_t)((uint64_t)full_scale * 4u * p * (400u - p) / 160000u);
}

int32_t tl_synth_mat(uint32_t ms, uint32_t r, uint32_t c, uint32_t rows, uint32_t cols, uint32_t full_scale)
{
    uint32_t pos = ms * rows / 1000u;
    uint32_t d = r > pos ? r - pos : pos - r;
    if (d >= 3u)
        return 0;
    return (int32_t)((uint64_t)full_scale * (3u - d) * (c + 1u) / (3u * cols));
}

/* A triangle wave of the stride, -1000 ... 1000. */
static int32_t tri(uint32_t ms)
{
    int32_t x = (int32_t)((ms * 4u) % 4000u) - 2000;
    return (x < 0 ? -x : x) - 1000;
}

int32_t tl_synth_imu(uint32_t ms, const char *name, uint32_t range_g, uint32_t range_dps, uint32_t range_ut)
{
    int32_t per_g = (int32_t)(32768u / range_g), per_dps = (int32_t)(32768u / range_dps);
    int32_t per_ut = range_ut ? (int32_t)(32768u / range_ut) : 0;
    char axis = name[1];
    if (name[0] == 'a')
        return axis == 'x' ? tri(ms) * per_g / 2000 : axis == 'y' ? tri((ms + 250u) % 1000u) * per_g / 4000
                                                                  : per_g + tri(ms) * per_g / 1000;
    if (name[0] == 'g')
        return axis == 'x' ? tri(ms) * per_dps / 10 : axis == 'y' ? tri((ms + 500u) % 1000u) * per_dps / 20
                                                                  : tri((ms + 100u) % 1000u) * per_dps / 40;
    return axis == 'x' ? 20 * per_ut : axis == 'y' ? -5 * per_ut : 40 * per_ut;
}

void tl_synth_scan(tl_dev *dev, uint64_t t)
{
    const tl_desc *d = dev->desc;
    uint32_t full = (1ul << d->adc_bits) - 1u;
    int right = d->kind == TL_KIND_INSOLE && d->side != 0 && d->side[0] == 'r';
    uint32_t ms = tl_synth_stride_ms(t, d->clock_hz, right);
    uint32_t i, j;
    if (d->kind == TL_KIND_INSOLE) {
        for (i = 0; i < d->sensels; i++)
            tl_dev_value(dev, tl_synth_insole(ms, i, d->sensels, full));
    } else if (d->kind == TL_KIND_MAT) {
        for (i = 0; i < d->rows; i++)
            for (j = 0; j < d->cols; j++)
                tl_dev_value(dev, tl_synth_mat(ms, i, j, d->rows, d->cols, full));
    } else {
        for (i = 0; i < d->n_channels; i++)
            tl_dev_value(dev, tl_synth_imu(ms, d->channels[i], d->range_g, d->range_dps, d->range_ut));
    }
}
