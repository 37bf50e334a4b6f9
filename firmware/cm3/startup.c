/* Cortex-M3 start-up for the reference firmware: vector table, .data/.bss set-up, and the three C library
 * functions the core uses (built with -nostdlib: no newlib needed). */
#include <stddef.h>
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void SysTick_Handler(void);
void UART0_Handler(void);
void Timer0A_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    main();
    for (;;)
        ;
}

void Default_Handler(void)
{
    for (;;)
        ;
}

typedef void (*vector)(void);

/* 16 system exceptions, then the LM3S6965's interrupts up to timer 0A (IRQ 19; UART0 is IRQ 5). */
__attribute__((section(".isr_vector"), used)) static const vector vectors[16 + 20] = {
    (vector)(uintptr_t)&_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    SysTick_Handler,
    /* IRQ 0-4: GPIO A-E */ Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    /* IRQ 5 */ UART0_Handler,
    /* IRQ 6-18 */ Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler,
    /* IRQ 19 */ Timer0A_Handler};

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
