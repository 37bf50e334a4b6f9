/* treadlab line-protocol insole: the sketch's hardware-independent part (plain C99), unit-tested on the host
 * (host/board_harness.c "line", tests/test_firmware_boards.py): the absolute sample schedule and the line format
 * "t,v1,...,vN\n" (docs/protocol.md, line protocol). The Arduino IDE compiles this folder's .c files with the
 * sketch; Makefile.arduino does the same. */
#ifndef TL_LINE_H
#define TL_LINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest line for n values of up to 5 digits: t (10 digits), n commas and values, '\n'. */
#define TL_LINE_MAX(n) (11u + 6u * (n) + 1u)

/* 1 when the sample due at *next_us has fallen due at now_us (a 32-bit microsecond counter that wraps every
 * 71 minutes), and *next_us then advances by period_us: samples stay on an absolute schedule however long the
 * printing takes; 0 when not yet due. */
int tl_line_due(uint32_t now_us, uint32_t *next_us, uint32_t period_us);
/* Write "t,v1,...,vN\n" into out (no NUL); returns its length, or 0 when it does not fit in cap bytes. */
size_t tl_line_format(char *out, size_t cap, uint32_t t, const uint16_t *v, uint8_t n);

#ifdef __cplusplus
}
#endif

#endif
