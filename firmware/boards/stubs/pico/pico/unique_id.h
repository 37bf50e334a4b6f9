/* Compile-check stand-in for the Pico SDK's pico/unique_id.h (boards/stubs/README.md). */
#ifndef TL_STUB_PICO_UNIQUE_ID_H
#define TL_STUB_PICO_UNIQUE_ID_H
#include "pico/stdlib.h"
#define PICO_UNIQUE_BOARD_ID_SIZE_BYTES 8
/* Writes the id as 2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES hex digits and a NUL, at most len bytes. */
void pico_get_unique_board_id_string(char *id_out, uint len);
#endif
