/* avr_pty: run an ATmega328P firmware in simavr with USART0 on a pseudo-terminal and the ADC pins driven by a
 * waveform file.
 *
 *   avr_pty --firmware FILE.elf --link PATH [--waveform FILE.csv] [--step-us US] [--mcu atmega328p]
 *           [--freq HZ]
 *
 * Prints "PTY <path>", points the symlink PATH at the pty, and runs until SIGTERM or SIGINT (exit 0). The waveform
 * is a CSV of millivolts, one row per step of simulated time (default 1000 us), one column per ADC pin from ADC0;
 * rows are replayed in a loop: at simulated time s the pins hold row floor(s / step) mod rows. AVcc is 5000 mV.
 * The simulation free-runs: it does not keep real time, so timing is judged by the device's own ticks.
 *
 * The UART bridge is this program's own, single-threaded, and never loses a byte: what the MCU transmits is held
 * in a buffer, and when the buffer is full because the host does not read the pty, the emulation waits until the
 * pty takes bytes again (simulated time stands still, so the firmware is never late). Bytes from the host go to
 * the MCU only while its receive FIFO has room (the UART's XON/XOFF). (simavr's uart_pty part drops bytes when its
 * 512-byte FIFO fills, or when a write to the pty is short, which made a loaded host see sequence gaps.) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <simavr/avr_adc.h>
#include <simavr/avr_ioport.h>
#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_time.h>

#define MAX_PINS 8

static volatile sig_atomic_t quit_flag = 0;
static uint32_t *wave; /* rows x pins, millivolts */
static size_t wave_rows, wave_pins;
static uint32_t step_us = 1000;
static avr_irq_t *adc_irq[MAX_PINS];

/* The bridge: the pty master, bytes from the MCU not yet written to it, bytes from the host not yet given to the
 * MCU, and whether the MCU's receive FIFO has room. */
#define TX_CAP 4096
static int pty_fd = -1;
static uint8_t tx_buf[TX_CAP];
static size_t tx_len;
static uint8_t rx_buf[512];
static size_t rx_len, rx_done;
static int uart_xon = 1;
static avr_irq_t *uart_in_irq;

static void on_signal(int sig)
{
    (void)sig;
    quit_flag = 1;
}

static void die(const char *msg)
{
    fprintf(stderr, "avr_pty: error: %s\n", msg);
    exit(2);
}

static void load_wave(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t cap = 4096;
    if (f == NULL)
        die("cannot read the --waveform file");
    wave = malloc(cap * MAX_PINS * sizeof *wave);
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        size_t k = 0;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (wave_rows == cap) {
            cap *= 2;
            wave = realloc(wave, cap * MAX_PINS * sizeof *wave);
        }
        while (k < MAX_PINS) {
            unsigned long v = strtoul(p, &end, 10);
            if (end == p)
                break;
            wave[wave_rows * MAX_PINS + k++] = (uint32_t)v;
            p = end;
            while (*p == ',' || *p == ' ')
                p++;
        }
        if (k == 0 || (wave_pins && k != wave_pins))
            die("every --waveform row needs the same number of millivolt columns (1 to 8)");
        wave_pins = k;
        wave_rows++;
    }
    fclose(f);
    if (wave_rows == 0)
        die("the --waveform file has no row");
}

/* Every step of simulated time: put the next row on the ADC pins. */
static avr_cycle_count_t next_row(avr_t *avr, avr_cycle_count_t when, void *param)
{
    size_t row = (size_t)(avr->cycle * 1000000ull / avr->frequency / step_us) % wave_rows, i;
    (void)param;
    for (i = 0; i < wave_pins; i++)
        avr_raise_irq(adc_irq[i], wave[row * MAX_PINS + i]);
    return when + avr_usec_to_cycles(avr, step_us);
}

/* Write what the pty takes now; with `wait`, keep waiting (the emulation paused) until all of it is written or a
 * signal asks to quit. Nothing is ever dropped. */
static void flush_tx(int wait)
{
    size_t done = 0;
    while (done < tx_len) {
        ssize_t w = write(pty_fd, tx_buf + done, tx_len - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != EIO)
            die("cannot write to the pty");
        if (!wait || quit_flag)
            break;
        {
            struct pollfd pfd = {pty_fd, POLLOUT, 0};
            if (poll(&pfd, 1, 100) > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
                usleep(1000); /* no reader at all: wait for one without spinning */
        }
    }
    memmove(tx_buf, tx_buf + done, tx_len - done);
    tx_len -= done;
}

/* A byte the MCU transmitted (called by simavr when the byte leaves USART0). */
static void on_uart_out(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (tx_len == TX_CAP)
        flush_tx(1); /* the host is not reading: hold the MCU here until it does */
    if (tx_len < TX_CAP)
        tx_buf[tx_len++] = (uint8_t)value;
}

static void on_uart_xon(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xon = 1;
}

static void on_uart_xoff(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xon = 0;
}

/* Between runs of the MCU: write out what it sent, read what the host sent, and give it bytes while it has room. */
static void service_pty(void)
{
    if (tx_len > 0)
        flush_tx(tx_len > TX_CAP / 2);
    if (rx_done == rx_len) {
        ssize_t r = read(pty_fd, rx_buf, sizeof rx_buf);
        rx_done = 0;
        rx_len = r > 0 ? (size_t)r : 0;
    }
    while (uart_xon && rx_done < rx_len)
        avr_raise_irq(uart_in_irq, rx_buf[rx_done++]);
}

static void open_bridge(avr_t *avr, char *slavename)
{
    int slave;
    struct termios tio;
    uint32_t flags = 0;
    if (openpty(&pty_fd, &slave, slavename, NULL, NULL) != 0)
        die("cannot open a pty");
    /* the slave stays open, so the pty keeps what the MCU sends while no host has it open */
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    fcntl(pty_fd, F_SETFL, fcntl(pty_fd, F_GETFL) | O_NONBLOCK);
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO; /* no echo of the device's bytes on our stdout */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in_irq = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_uart_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_uart_xoff, NULL);
}

int main(int argc, char **argv)
{
    static char slavename[256];
    elf_firmware_t fw;
    const char *firmware = NULL, *link = NULL, *waveform = NULL, *mcu = "atmega328p";
    unsigned long freq = 16000000ul;
    avr_t *avr;
    int a;
    char tmp[4096];
    struct sigaction sa;

    for (a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--firmware"))
            firmware = argv[a + 1];
        else if (!strcmp(argv[a], "--link"))
            link = argv[a + 1];
        else if (!strcmp(argv[a], "--waveform"))
            waveform = argv[a + 1];
        else if (!strcmp(argv[a], "--step-us"))
            step_us = (uint32_t)strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--mcu"))
            mcu = argv[a + 1];
        else if (!strcmp(argv[a], "--freq"))
            freq = strtoul(argv[a + 1], NULL, 10);
        else
            die("usage: avr_pty --firmware FILE.elf --link PATH [--waveform FILE.csv] [--step-us US] [--mcu M]");
    }
    if (firmware == NULL || link == NULL || a != argc || step_us == 0)
        die("usage: avr_pty --firmware FILE.elf --link PATH [--waveform FILE.csv] [--step-us US] [--mcu M]");
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(firmware, &fw) != 0)
        die("cannot read the firmware ELF");
    avr = avr_make_mcu_by_name(mcu);
    if (avr == NULL)
        die("unknown --mcu");
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    avr->frequency = (uint32_t)freq;
    avr->vcc = avr->avcc = avr->aref = 5000;
    avr->log = LOG_WARNING;

    open_bridge(avr, slavename);

    if (waveform != NULL) {
        size_t i;
        load_wave(waveform);
        for (i = 0; i < wave_pins; i++)
            adc_irq[i] = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + (int)i);
        next_row(avr, 0, NULL);
        avr_cycle_timer_register_usec(avr, step_us, next_row, NULL);
    }

    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", link, (long)getpid());
    unlink(tmp);
    if (symlink(slavename, tmp) != 0 || rename(tmp, link) != 0)
        die("cannot create the --link symlink");
    printf("PTY %s\n", slavename);
    fflush(stdout);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!quit_flag) {
        int state = cpu_Running, i;
        for (i = 0; i < 1000 && state != cpu_Done && state != cpu_Crashed; i++) /* about 6 UART bytes' time */
            state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "avr_pty: the simulated MCU stopped (state %d)\n", state);
            break;
        }
        service_pty();
    }
    unlink(link);
    return 0;
}
