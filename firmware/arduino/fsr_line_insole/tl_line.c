/* treadlab line-protocol insole: schedule and line format (tl_line.h). */
#include "tl_line.h"

int tl_line_due(uint32_t now_us, uint32_t *next_us, uint32_t period_us)
{
    if ((int32_t)(now_us - *next_us) < 0)
        return 0; /* not due yet (wrap-safe) */
    *next_us += period_us;
    return 1;
}

static size_t put_uint(char *out, size_t at, size_t cap, uint32_t x)
{
    char digits[10];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + x % 10u);
        x /= 10u;
    } while (x);
    if (at + k > cap)
        return 0;
    while (k)
        out[at++] = digits[--k];
    return at;
}

size_t tl_line_format(char *out, size_t cap, uint32_t t, const uint16_t *v, uint8_t n)
{
    size_t at = put_uint(out, 0, cap, t);
    for (uint8_t i = 0; i < n && at; i++) {
        if (at + 1 > cap)
            return 0;
        out[at++] = ',';
        at = put_uint(out, at, cap, v[i]);
    }
    if (!at || at + 1 > cap)
        return 0;
    out[at++] = '\n';
    return at;
}
