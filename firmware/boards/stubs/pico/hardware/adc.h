/* Compile-check stand-in for the Pico SDK's hardware/adc.h (boards/stubs/README.md). */
#ifndef TL_STUB_HARDWARE_ADC_H
#define TL_STUB_HARDWARE_ADC_H
#include "pico/stdlib.h"
void adc_init(void);
void adc_gpio_init(uint gpio);
void adc_select_input(uint input);
uint16_t adc_read(void);
#endif
