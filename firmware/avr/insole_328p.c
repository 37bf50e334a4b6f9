/* treadlab reference firmware on an ATmega328P (Arduino Uno/Nano class): a 6-sensel FSR insole.
 *
 * Hardware layer of the portable core (../core): USART0 at 1 Mbaud (16 MHz, U2X) is the link, Timer1 running at
 * F_CPU/8 = 2 MHz and extended to 64 bits by its overflow interrupt is the device clock, and the capture reads
 * ADC0..5 (AVcc reference, 10 bits) once per sample, starting at its due tick t (one conversion takes 13 ADC
 * clocks at 125 kHz, 104 us; simavr models about 190 us). Each FSR sits in a voltage divider to its ADC pin (docs/firmware.md,
 * wiring). The UART receive interrupt feeds tl_dev_rx; the main loop calls tl_dev_poll; TX is blocking.
 * Runs unchanged in simavr (firmware/sim/avr_pty.c bridges USART0 to a pty and drives the ADC pins). */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <stdint.h>

#include "../core/tl_device.h"

#ifndef F_CPU
#define F_CPU 16000000UL
#endif
#define N_SENSELS 6
#define CLOCK_HZ (F_CPU / 8u)

static tl_dev dev;
static volatile uint32_t timer_high; /* Timer1 overflows */

ISR(TIMER1_OVF_vect) { timer_high++; }

ISR(USART_RX_vect) { tl_dev_rx(&dev, UDR0); }

static uint64_t hal_ticks(void *ctx)
{
    uint32_t high;
    uint16_t low;
    uint8_t sreg = SREG;
    (void)ctx;
    cli();
    low = TCNT1;
    high = timer_high;
    if ((TIFR1 & _BV(TOV1)) && low < 0x8000u)
        high++; /* an overflow is pending: TCNT1 has already wrapped */
    SREG = sreg;
    return ((uint64_t)high << 16) | low;
}

static void hal_write(void *ctx, const uint8_t *bytes, uint16_t n)
{
    uint16_t i;
    (void)ctx;
    for (i = 0; i < n; i++) {
        while (!(UCSR0A & _BV(UDRE0)))
            ;
        UDR0 = bytes[i];
    }
}

static uint16_t adc_read(uint8_t channel)
{
    ADMUX = (uint8_t)(_BV(REFS0) | channel); /* AVcc reference, right-adjusted */
    ADCSRA |= _BV(ADSC);
    while (ADCSRA & _BV(ADSC))
        ;
    return ADC;
}

static uint16_t captured[N_SENSELS];

/* Convert every pin at once, before the DATA header goes out (the UART would delay the conversions). */
static void hal_capture(void *ctx, uint64_t t, uint32_t seq)
{
    uint8_t i;
    (void)ctx;
    (void)t;
    (void)seq;
    for (i = 0; i < N_SENSELS; i++)
        captured[i] = adc_read(i);
}

static void hal_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    uint8_t i;
    (void)ctx;
    (void)t;
    (void)seq;
    for (i = 0; i < N_SENSELS; i++)
        tl_dev_value(d, captured[i]);
}

static const uint16_t rates[] = {50, 100, 200, 500}; /* a scan takes 0.63 ms (6 x 13 ADC cycles at 125 kHz) */

int main(void)
{
    static const tl_hal hal = {hal_write, hal_ticks, hal_scan, 0, 0, hal_capture};
    static tl_desc desc;
    desc.kind = TL_KIND_INSOLE;
    desc.dtype = TL_U16;
    desc.adc_bits = 10;
    desc.clock_hz = CLOCK_HZ;
    desc.rates_hz = rates;
    desc.n_rates = sizeof rates / sizeof rates[0];
    desc.rate_hz = 200;
    desc.model = "treadlab ref insole (ATmega328P)";
    desc.serial = "AVR328P-0001"; /* per board: keep it unique, e.g. from the EEPROM */
    desc.firmware = "tl-core 1 (avr)";
    desc.unit = TL_UNIT_N;
    desc.side = "left";
    desc.sensels = N_SENSELS;
    desc.link_bytes_per_s = 100000u; /* 1 Mbaud, 10 bits per byte */
    desc.max_burst = 4;

    UBRR0 = 1; /* 1 Mbaud at 16 MHz with U2X */
    UCSR0A = _BV(U2X0);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    TCCR1A = 0;
    TCCR1B = _BV(CS11); /* F_CPU / 8 */
    TIMSK1 = _BV(TOIE1);
    ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0); /* 125 kHz ADC clock */
    DIDR0 = 0x3F;                                               /* no digital input buffers on ADC0..5 */
    if (tl_dev_init(&dev, &desc, &hal) != 0)
        for (;;)
            ;
    sei();
    for (;;)
        tl_dev_poll(&dev);
}
