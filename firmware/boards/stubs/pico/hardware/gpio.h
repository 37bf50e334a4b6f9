/* Compile-check stand-in for the Pico SDK's hardware/gpio.h (boards/stubs/README.md). */
#ifndef TL_STUB_HARDWARE_GPIO_H
#define TL_STUB_HARDWARE_GPIO_H
#include "pico/stdlib.h"
#define GPIO_OUT 1
#define GPIO_IN 0
enum gpio_function { GPIO_FUNC_SPI = 1, GPIO_FUNC_UART = 2, GPIO_FUNC_I2C = 3, GPIO_FUNC_SIO = 5 };
void gpio_init(uint gpio);
void gpio_set_dir(uint gpio, bool out);
void gpio_put(uint gpio, bool value);
void gpio_set_function(uint gpio, enum gpio_function fn);
void gpio_pull_up(uint gpio);
#endif
