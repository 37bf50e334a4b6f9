/* refdev: the treadlab reference firmware core on the host, behind a pseudo-terminal.
 *
 *   refdev --link PATH [--kind insole|mat|imu] [--side left|right] [--sensels N] [--rows R --cols C] [--rate HZ]
 *          [--clock-hz HZ] [--clock-error-ppm X] [--serial TEXT] [--seconds S]
 *          [--samples FILE] [--layout-file FILE] [--channels ax,ay,...] [--placement P] [--dtype u8|u16]
 *          [--adc-bits B] [--rates HZ,HZ,...] [--max-burst N]
 *
 * It creates a pty, points the symlink PATH at it, prints "PTY <path>" and serves protocol v1 until SIGTERM or
 * SIGINT (exit 0) or for S seconds. Its hardware layer: the pty is the UART, CLOCK_MONOTONIC scaled by
 * (1 + X ppm) is the tick counter, and the scan is the synthetic signal of tl_synth.c or the rows of a CSV file
 * of raw values (sample seq takes row seq mod rows). This file is the only one that uses POSIX; the core is the
 * same C99 that runs on the boards. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../core/tl_device.h"
#include "../core/tl_synth.h"

#define OUT_CAP 65536
#define MAX_RATES 32
#define MAX_CHANNELS 9

static volatile sig_atomic_t quit_flag = 0;

typedef struct {
    int master, slave;
    uint8_t out[OUT_CAP];
    size_t out_n;
    struct timespec t0;
    double ticks_per_ns;
    tl_dev *dev;
    int32_t *rows_data; /* --samples: nrows x n values */
    size_t nrows;
    uint32_t n_values;
} host;

static void on_signal(int sig)
{
    (void)sig;
    quit_flag = 1;
}

static void die(const char *msg)
{
    fprintf(stderr, "refdev: error: %s\n", msg);
    exit(2);
}

static uint64_t now_ns(const host *h)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - h->t0.tv_sec) * 1000000000ull + (uint64_t)t.tv_nsec - (uint64_t)h->t0.tv_nsec;
}

/* Bytes from the host go to the core's receive callback (it only decodes and queues: safe at any time). */
static void read_input(host *h)
{
    uint8_t buf[4096];
    ssize_t n, i;
    while ((n = read(h->master, buf, sizeof buf)) > 0)
        for (i = 0; i < n; i++)
            tl_dev_rx(h->dev, buf[i]);
}

/* Write the output buffer; while the pty is full, keep receiving (a UART's RX interrupt runs during TX). */
static void flush_out(host *h)
{
    size_t done = 0;
    while (done < h->out_n && !quit_flag) {
        ssize_t n = write(h->master, h->out + done, h->out_n - done);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break;
        } else {
            struct pollfd p = {h->master, POLLIN | POLLOUT, 0};
            poll(&p, 1, 100);
            if (p.revents & POLLIN)
                read_input(h);
        }
    }
    h->out_n = 0;
}

static void hal_write(void *ctx, const uint8_t *bytes, uint16_t n)
{
    host *h = ctx;
    if (h->out_n + n > OUT_CAP)
        flush_out(h);
    memcpy(h->out + h->out_n, bytes, n);
    h->out_n += n;
}

static uint64_t hal_ticks(void *ctx)
{
    host *h = ctx;
    return (uint64_t)((double)now_ns(h) * h->ticks_per_ns);
}

static void hal_scan(void *ctx, tl_dev *dev, uint64_t t, uint32_t seq)
{
    host *h = ctx;
    if (h->rows_data != NULL) {
        const int32_t *row = h->rows_data + (size_t)(seq % h->nrows) * h->n_values;
        uint32_t i;
        for (i = 0; i < h->n_values; i++)
            tl_dev_value(dev, row[i]);
    } else {
        tl_synth_scan(dev, t);
    }
}

/* The calibration refdev reports (tests/firmware_signals.py knows it too). */
static void hal_calibration(void *ctx, uint32_t i, float *gain, float *offset)
{
    host *h = ctx;
    const tl_desc *d = h->dev->desc;
    if (d->kind == TL_KIND_IMU) {
        const char *name = d->channels[i];
        *gain = name[0] == 'a' ? (float)d->range_g / 32768.0f
                : name[0] == 'g' ? (float)d->range_dps / 32768.0f : (float)d->range_ut / 32768.0f;
        *offset = 0.0f;
    } else {
        *gain = 0.01f * (float)(1u + i % 4u);
        *offset = (float)(i % 8u);
    }
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A CSV of integers, n per line; blank lines and lines starting with '#' are skipped. */
static void load_samples(host *h, const char *path)
{
    char *text = read_file(path), *line, *save = NULL;
    size_t cap = 1024;
    if (text == NULL)
        die("cannot read the --samples file");
    h->rows_data = malloc(cap * h->n_values * sizeof(int32_t));
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *p = line, *end;
        uint32_t k = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#' || *p == '\r')
            continue;
        if (h->nrows == cap) {
            cap *= 2;
            h->rows_data = realloc(h->rows_data, cap * h->n_values * sizeof(int32_t));
        }
        while (k < h->n_values) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            h->rows_data[h->nrows * h->n_values + k++] = (int32_t)v;
            p = end;
            while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\r')
                p++;
        }
        if (k != h->n_values || *p != '\0') {
            fprintf(stderr, "refdev: error: --samples line %zu: expected %u integers\n", h->nrows + 1,
                    (unsigned)h->n_values);
            exit(2);
        }
        h->nrows++;
    }
    free(text);
    if (h->nrows == 0)
        die("the --samples file has no sample");
}

static void open_pty(host *h, const char *link)
{
    struct termios tio;
    char tmp[4096];
    const char *name;
    h->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (h->master < 0 || grantpt(h->master) != 0 || unlockpt(h->master) != 0)
        die("cannot create a pseudo-terminal");
    name = ptsname(h->master);
    h->slave = open(name, O_RDWR | O_NOCTTY); /* kept open: the master never sees a hang-up between hosts */
    if (h->slave < 0 || tcgetattr(h->slave, &tio) != 0)
        die("cannot open the pseudo-terminal's slave side");
    cfmakeraw(&tio);
    tcsetattr(h->slave, TCSANOW, &tio);
    fcntl(h->master, F_SETFL, fcntl(h->master, F_GETFL) | O_NONBLOCK);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", link, (long)getpid());
    unlink(tmp);
    if (symlink(name, tmp) != 0 || rename(tmp, link) != 0)
        die("cannot create the --link symlink");
    printf("PTY %s\n", name);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: refdev --link PATH [--kind insole|mat|imu] [--side left|right] [--sensels N] [--rows R --cols C]\n"
            "              [--rate HZ] [--clock-hz HZ] [--clock-error-ppm X] [--serial TEXT] [--seconds S]\n"
            "              [--samples FILE] [--layout-file FILE] [--channels ax,ay,...] [--placement P]\n"
            "              [--dtype u8|u16] [--adc-bits B] [--rates HZ,HZ,...] [--max-burst N]\n");
    exit(2);
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "refdev: error: %s must be an integer from %ld to %ld, not '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static double real(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "refdev: error: %s must be a number, not '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static host h;
    static tl_dev dev;
    static tl_desc d;
    static tl_hal hal;
    static uint16_t rates[MAX_RATES] = {50, 100, 200, 250, 500, 1000};
    static const char *channels[MAX_CHANNELS];
    static char channel_text[64] = "ax,ay,az,gx,gy,gz";
    static char serial[64];
    const char *link = NULL, *kind = "insole", *samples = NULL, *layout_file = NULL, *dtype = NULL;
    double ppm = 0.0, seconds = -1.0;
    long adc_bits = -1, rate = 200, max_burst = 65535;
    uint8_t n_rates = 6, i;
    int a, have_rates = 0, err;
    struct sigaction sa;

    memset(&d, 0, sizeof d);
    d.side = "left";
    d.sensels = 16;
    d.rows = 32;
    d.cols = 64;
    d.clock_hz = 1000000u;
    d.placement = "pelvis";
    d.range_g = 16;
    d.range_dps = 2000;
    d.range_ut = 4900;
    d.pitch_um[0] = d.pitch_um[1] = 8500u;
    d.belt_axis = "rows";
    d.model = "treadlab refdev";
    d.firmware = "tl-core 1 (host pty)";
    snprintf(serial, sizeof serial, "REFDEV-%ld", (long)getpid());
    d.serial = serial;
    for (a = 1; a < argc; a++) {
        const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        if (val == NULL)
            usage();
        a++;
        if (!strcmp(opt, "--link"))
            link = val;
        else if (!strcmp(opt, "--kind"))
            kind = val;
        else if (!strcmp(opt, "--side"))
            d.side = val;
        else if (!strcmp(opt, "--sensels"))
            d.sensels = (uint16_t)num(val, 1, 65535, "--sensels");
        else if (!strcmp(opt, "--rows"))
            d.rows = (uint16_t)num(val, 1, 4096, "--rows");
        else if (!strcmp(opt, "--cols"))
            d.cols = (uint16_t)num(val, 1, 4096, "--cols");
        else if (!strcmp(opt, "--rate"))
            rate = num(val, 1, 65535, "--rate");
        else if (!strcmp(opt, "--clock-hz"))
            d.clock_hz = (uint32_t)num(val, 1, 4000000000L, "--clock-hz");
        else if (!strcmp(opt, "--clock-error-ppm"))
            ppm = real(val, "--clock-error-ppm");
        else if (!strcmp(opt, "--serial"))
            d.serial = val;
        else if (!strcmp(opt, "--seconds"))
            seconds = real(val, "--seconds");
        else if (!strcmp(opt, "--samples"))
            samples = val;
        else if (!strcmp(opt, "--layout-file"))
            layout_file = val;
        else if (!strcmp(opt, "--channels"))
            snprintf(channel_text, sizeof channel_text, "%s", val);
        else if (!strcmp(opt, "--placement"))
            d.placement = val;
        else if (!strcmp(opt, "--dtype"))
            dtype = val;
        else if (!strcmp(opt, "--max-burst"))
            max_burst = num(val, 1, 65535, "--max-burst");
        else if (!strcmp(opt, "--adc-bits"))
            adc_bits = num(val, 1, 16, "--adc-bits");
        else if (!strcmp(opt, "--rates")) {
            char *copy = strdup(val), *tok, *save = NULL;
            n_rates = 0;
            for (tok = strtok_r(copy, ",", &save); tok && n_rates < MAX_RATES; tok = strtok_r(NULL, ",", &save))
                rates[n_rates++] = (uint16_t)num(tok, 1, 65535, "--rates");
            have_rates = 1;
        } else
            usage();
    }
    if (link == NULL)
        usage();
    if (!strcmp(kind, "insole")) {
        d.kind = TL_KIND_INSOLE;
        if (strcmp(d.side, "left") && strcmp(d.side, "right"))
            die("--side must be left or right");
        d.layout_name = d.sensels == 16 ? "insole16" : d.sensels == 99 ? "insole99" : d.sensels == 960 ? "insole960"
                                                                                                       : NULL;
    } else if (!strcmp(kind, "mat")) {
        d.kind = TL_KIND_MAT;
        d.unit = TL_UNIT_KPA;
    } else if (!strcmp(kind, "imu")) {
        char *tok, *save = NULL;
        d.kind = TL_KIND_IMU;
        d.unit = TL_UNIT_IMU;
        d.dtype = TL_I16;
        static const char *const placements[] = {"pelvis", "trunk", "tibia_left", "tibia_right", "foot_left",
                                                 "foot_right"};
        uint8_t j, acc = 0;
        for (tok = strtok_r(channel_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (d.n_channels == MAX_CHANNELS || strlen(tok) != 2 || !strchr("agm", tok[0]) || !strchr("xyz", tok[1]))
                die("--channels takes names from ax ay az gx gy gz mx my mz");
            for (j = 0; j < d.n_channels; j++)
                if (!strcmp(channels[j], tok))
                    die("--channels names a channel twice");
            acc += tok[0] == 'a';
            channels[d.n_channels++] = tok;
        }
        if (acc != 3)
            die("--channels must contain ax ay az");
        for (j = 0; j < sizeof placements / sizeof placements[0] && strcmp(placements[j], d.placement); j++)
            ;
        if (j == sizeof placements / sizeof placements[0])
            die("--placement must be pelvis, trunk, tibia_left, tibia_right, foot_left or foot_right");
        d.channels = channels;
    } else {
        die("--kind must be insole, mat or imu");
    }
    if (d.kind != TL_KIND_IMU) {
        d.dtype = dtype != NULL && !strcmp(dtype, "u8") ? TL_U8 : TL_U16;
        if (dtype != NULL && strcmp(dtype, "u8") && strcmp(dtype, "u16"))
            die("--dtype must be u8 or u16");
        d.adc_bits = (uint8_t)(adc_bits > 0 ? adc_bits : d.dtype == TL_U8 ? 8 : 12);
        if (d.dtype == TL_U8 && d.adc_bits > 8)
            die("--adc-bits above 8 does not fit dtype u8");
    } else {
        d.adc_bits = 16;
    }
    if (layout_file != NULL) {
        d.layout_json = read_file(layout_file);
        if (d.layout_json == NULL)
            die("cannot read the --layout-file");
    }
    for (i = 0; i < n_rates && rates[i] != rate; i++)
        ;
    if (i == n_rates) {
        if (have_rates)
            die("--rate must be one of --rates");
        rates[n_rates++] = (uint16_t)rate;
    }
    d.rates_hz = rates;
    d.n_rates = n_rates;
    d.rate_hz = (uint16_t)rate;
    d.max_burst = (uint16_t)max_burst;

    hal.write = hal_write;
    hal.ticks = hal_ticks;
    hal.scan = hal_scan;
    hal.calibration = hal_calibration;
    hal.ctx = &h;
    h.dev = &dev;
    h.n_values = tl_dev_n_values(&d);
    h.ticks_per_ns = (double)d.clock_hz * (1.0 + ppm * 1e-6) / 1e9;
    if (samples != NULL)
        load_samples(&h, samples);
    err = tl_dev_init(&dev, &d, &hal);
    if (err == -2)
        die("one DATA message of this device would exceed the 256 KiB frame limit");
    if (err != 0)
        die("invalid device description");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    open_pty(&h, link);
    clock_gettime(CLOCK_MONOTONIC, &h.t0);

    while (!quit_flag) {
        uint64_t wait_ticks, wait_ns = 20000000ull; /* 20 ms while stopped */
        struct pollfd p = {h.master, POLLIN, 0};
        struct timespec ts;
        if (seconds >= 0 && (double)now_ns(&h) >= seconds * 1e9)
            break;
        wait_ticks = tl_dev_ticks_to_next(&dev);
        if (wait_ticks != UINT64_MAX) {
            double ns = (double)wait_ticks / h.ticks_per_ns;
            wait_ns = ns < 2e7 ? (uint64_t)ns : 20000000ull;
        }
        ts.tv_sec = (time_t)(wait_ns / 1000000000ull);
        ts.tv_nsec = (long)(wait_ns % 1000000000ull);
        if (ppoll(&p, 1, &ts, NULL) > 0 && (p.revents & POLLIN))
            read_input(&h);
        tl_dev_poll(&dev);
        flush_out(&h);
    }
    {
        char target[4096];
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            if (!strcmp(target, ptsname(h.master)))
                unlink(link);
        }
    }
    return 0;
}
