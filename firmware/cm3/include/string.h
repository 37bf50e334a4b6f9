/* The part of <string.h> the reference firmware core uses, for bare builds without a C library (startup.c
 * defines the functions). With newlib installed, its own <string.h> works as well. */
#ifndef TL_MIN_STRING_H
#define TL_MIN_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);
#endif
