/* treadlab reference firmware on a Cortex-M3: the TI Stellaris LM3S6965 (QEMU's lm3s6965evb board).
 *
 * Hardware layer of the portable core (../core): UART0 (a PL011) is the link, with a receive interrupt feeding
 * tl_dev_rx; SysTick counts down at the 12 MHz core clock and its wrap interrupt (every 1.4 s) extends it to the
 * 64-bit device clock; general-purpose timer 0 interrupts every millisecond only to wake the main loop, which calls
 * tl_dev_poll and sleeps (WFI). The clock never depends on a 1-ms interrupt being taken in time (an emulator that
 * stalls its CPU would lose those). The board has no sensor front end in QEMU,
 * so the scan is the synthetic signal of ../core/tl_synth.c; a real board replaces hal_scan (docs/firmware.md).
 * Build with -DTL_BOARD_MAT (a 16 x 24 mat) or -DTL_BOARD_IMU (a 6-axis IMU on the pelvis). No C library. */
#include <stdint.h>

#include "../core/tl_device.h"
#include "../core/tl_synth.h"

#define CLOCK_HZ 12000000u
#define TICKS_PER_MS (CLOCK_HZ / 1000u)
#define SYSTICK_SPAN (1u << 24)

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0 0x4000C000u
#define UART_DR REG(UART0 + 0x000)
#define UART_FR REG(UART0 + 0x018)
#define UART_IBRD REG(UART0 + 0x024)
#define UART_FBRD REG(UART0 + 0x028)
#define UART_LCRH REG(UART0 + 0x02C)
#define UART_CTL REG(UART0 + 0x030)
#define UART_IM REG(UART0 + 0x038)
#define UART_ICR REG(UART0 + 0x044)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)
#define RCGC1 REG(0x400FE104u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define UART0_IRQ 5
#define TIMER0 0x40030000u
#define GPTM_CFG REG(TIMER0 + 0x000)
#define GPTM_TAMR REG(TIMER0 + 0x004)
#define GPTM_CTL REG(TIMER0 + 0x00C)
#define GPTM_IMR REG(TIMER0 + 0x018)
#define GPTM_ICR REG(TIMER0 + 0x024)
#define GPTM_TAILR REG(TIMER0 + 0x028)
#define TIMER0A_IRQ 19
#define RCGC1_TIMER0 (1u << 16)

static tl_dev dev;
static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void Timer0A_Handler(void) { GPTM_ICR = 1u; } /* a wake-up, nothing else */

void UART0_Handler(void)
{
    while (!(UART_FR & FR_RXFE))
        tl_dev_rx(&dev, (uint8_t)UART_DR);
    UART_ICR = 0x7F0u;
}

static uint64_t hal_ticks(void *ctx)
{
    uint32_t a, b, v;
    (void)ctx;
    do { /* a SysTick wrap between the reads changes wraps: read again */
        a = wraps;
        v = SYST_CVR;
        b = wraps;
    } while (a != b);
    return (uint64_t)a * SYSTICK_SPAN + (SYSTICK_SPAN - 1u - v);
}

static void hal_write(void *ctx, const uint8_t *bytes, uint16_t n)
{
    uint16_t i;
    (void)ctx;
    for (i = 0; i < n; i++) {
        while (UART_FR & FR_TXFF)
            ;
        UART_DR = bytes[i];
    }
}

static void hal_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)seq;
    tl_synth_scan(d, t);
}

static const uint16_t rates[] = {50, 100, 200, 500, 1000};
#ifdef TL_BOARD_IMU
static const char *const channels[] = {"ax", "ay", "az", "gx", "gy", "gz"};
#endif

int main(void)
{
    static const tl_hal hal = {hal_write, hal_ticks, hal_scan, 0, 0, 0};
    static tl_desc desc;
    desc.clock_hz = CLOCK_HZ;
    desc.rates_hz = rates;
    desc.n_rates = sizeof rates / sizeof rates[0];
    desc.rate_hz = 200;
    desc.firmware = "tl-core 1 (cortex-m3 lm3s6965)";
    desc.max_burst = 64;
#ifdef TL_BOARD_IMU
    desc.kind = TL_KIND_IMU;
    desc.dtype = TL_I16;
    desc.adc_bits = 16;
    desc.unit = TL_UNIT_IMU;
    desc.channels = channels;
    desc.n_channels = 6;
    desc.placement = "pelvis";
    desc.range_g = 16;
    desc.range_dps = 2000;
    desc.model = "treadlab ref imu (LM3S6965)";
    desc.serial = "CM3-IMU-0001";
#else
    desc.kind = TL_KIND_MAT;
    desc.dtype = TL_U16;
    desc.adc_bits = 12;
    desc.unit = TL_UNIT_KPA;
    desc.rows = 16;
    desc.cols = 24;
    desc.pitch_um[0] = desc.pitch_um[1] = 10000u;
    desc.belt_axis = "rows";
    desc.model = "treadlab ref mat (LM3S6965)";
    desc.serial = "CM3-MAT-0001";
#endif
    RCGC1 |= 1u | RCGC1_TIMER0; /* UART0 and timer 0 clocks */
    UART_CTL = 0;
    UART_IBRD = 6; /* 115200 baud at 12 MHz (a real board: its own clock); QEMU ignores the rate */
    UART_FBRD = 33;
    UART_LCRH = 0x70u; /* 8N1, FIFOs on */
    UART_IM = (1u << 4) | (1u << 6); /* receive and receive-timeout interrupts */
    UART_CTL = 0x301u;               /* UART, TX and RX enabled */
    GPTM_CTL = 0;
    GPTM_CFG = 0;        /* 32-bit timer */
    GPTM_TAMR = 2u;      /* periodic */
    GPTM_TAILR = TICKS_PER_MS - 1u;
    GPTM_IMR = 1u;       /* time-out interrupt */
    GPTM_CTL = 1u;       /* enabled */
    NVIC_ISER0 = (1u << UART0_IRQ) | (1u << TIMER0A_IRQ);
    SYST_RVR = SYSTICK_SPAN - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enabled */
    if (tl_dev_init(&dev, &desc, &hal) != 0)
        for (;;)
            ;
    for (;;) {
        tl_dev_poll(&dev);
        if (dev.cmd_head == dev.cmd_tail && tl_dev_ticks_to_next(&dev) > TICKS_PER_MS / 4u)
            __asm__ volatile("wfi"); /* until the next millisecond or a received byte */
    }
}
