/* Compile-check stand-in for the Pico SDK's hardware/i2c.h (boards/stubs/README.md). */
#ifndef TL_STUB_HARDWARE_I2C_H
#define TL_STUB_HARDWARE_I2C_H
#include "pico/stdlib.h"
typedef struct i2c_inst i2c_inst_t;
extern i2c_inst_t i2c0_inst, i2c1_inst;
#define i2c0 (&i2c0_inst)
#define i2c1 (&i2c1_inst)
uint i2c_init(i2c_inst_t *i2c, uint baudrate);
/* Bytes written, or PICO_ERROR_GENERIC when the address is not acknowledged. */
int i2c_write_blocking(i2c_inst_t *i2c, uint8_t addr, const uint8_t *src, size_t len, bool nostop);
/* Bytes read, or PICO_ERROR_GENERIC. */
int i2c_read_blocking(i2c_inst_t *i2c, uint8_t addr, uint8_t *dst, size_t len, bool nostop);
#endif
