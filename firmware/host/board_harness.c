/* treadlab board ports on the host: the hardware-independent part of each board port (boards/common: the
 * description, the multiplexer and row/column scanning, the MPU-6050 decoding) run through the portable core
 * against fake hardware, for tests/test_firmware_boards.py.
 *
 *   board_harness insole|mat|imu [--samples N] [--side S] [--placement P] [--range-g G] [--range-dps D]
 *                 [--regdump FILE] [--fail-seq K] [--start-us U] [--print-config]
 *   board_harness line [--start-us U] [--step-us S] [--steps K] [--period-us P]
 *
 * Reads the host's command frames from standard input (all of it, before the clock starts), then advances a fake
 * 1 MHz clock one sample period at a time, polling the core until N samples have been sent; every byte the device
 * sends goes to standard output. --start-us sets the clock at power-up; the mat's clock is a 32-bit micros()
 * extended to 64 bits as on the Teensy. --print-config prints the MPU-6050 register writes ("reg value", hex) instead.
 *
 * The fakes model what the port's sequencing is there for, so that a wrong sequence gives wrong DATA:
 *   insole  a 16-channel mux into a sample-and-hold ADC: a conversion less than TL_MUX16_SETTLE_US after a channel
 *           change reads 4095 (not settled), the first conversion after a change reads the previous channel;
 *           channel ch at sample seq holds (seq * 37 + ch * 251 + 100) mod 4096
 *   mat     16 rows x 32 columns through two muxes (columns 0-15 on ADC 0, 16-31 on ADC 1): a column reads the sum
 *           of the sensels of every row driven high, plus 50 counts for every row left floating (never driven),
 *           4095 when read less than TL_MAT_SETTLE_US after a channel change; sensel (r, c) at sample seq holds
 *           ((r * 32 + c) * 7 + seq) mod 4096
 *   imu     an MPU-6050 whose burst read from ACCEL_XOUT_H returns dump (seq mod n) of the 14-byte dumps in FILE;
 *           the read of sample --fail-seq fails (as an I2C NAK would)
 *   line    the line sketch's loop() (arduino/fsr_line_insole, 6 sensels) on a fake clock: a 64-bit microsecond
 *           count from U (micros() its low 32 bits, millis() the count / 1000, both wrapping), the loop run every
 *           S us K times; sample k reads (k * 13 + i * 101) mod 1024 on pin i; the lines go to standard output */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../boards/common/tl_boards.h"
#include "../boards/common/tl_mpu6050.h"
#include "../boards/common/tl_scan.h"
#include "../arduino/fsr_line_insole/tl_line.h"
#include "../core/tl_device.h"

typedef struct {
    uint64_t ticks;
    int micros32;       /* the board's clock is a 32-bit counter extended by tl_ticks_extend32 (the mat) */
    tl_ticks32 ext;
    uint32_t seq;
    uint8_t sel;        /* mux channel on the select lines */
    uint32_t waited_us; /* since the last channel change */
    uint32_t reads;     /* conversions since the last channel change */
    uint16_t held;      /* the sample-and-hold's last value */
    uint8_t rows[TL_MAT_ROWS]; /* 0 low, 1 high, 2 floating */
    /* imu */
    uint8_t *dumps;
    size_t n_dumps;
    long fail_seq;
    uint16_t range_g, range_dps;
} fake;

static fake F;
static uint16_t captured16[TL_MUX16_SENSELS];
static int16_t captured_imu[6];

static void io_select(void *ctx, uint8_t ch)
{
    fake *f = ctx;
    if (ch != f->sel) {
        f->sel = ch;
        f->waited_us = 0;
        f->reads = 0;
    }
}

static void io_wait_us(void *ctx, uint32_t us)
{
    ((fake *)ctx)->waited_us += us;
}

static uint16_t insole_truth(uint32_t seq, uint8_t ch)
{
    return (uint16_t)((seq * 37u + ch * 251u + 100u) % 4096u);
}

static uint16_t mat_truth(uint32_t seq, uint16_t r, uint16_t c)
{
    return (uint16_t)(((uint32_t)(r * TL_MAT_COLS + c) * 7u + seq) % 4096u);
}

static uint16_t insole_adc(void *ctx, uint8_t adc)
{
    fake *f = ctx;
    uint16_t v;
    (void)adc;
    if (f->waited_us < TL_MUX16_SETTLE_US)
        v = 4095;
    else if (f->reads == 0)
        v = f->held; /* the sample-and-hold still holds the previous channel */
    else
        v = insole_truth(f->seq, f->sel);
    f->reads++;
    f->held = f->waited_us < TL_MUX16_SETTLE_US ? f->held : insole_truth(f->seq, f->sel);
    return v;
}

static uint16_t mat_adc(void *ctx, uint8_t adc)
{
    fake *f = ctx;
    uint16_t c = (uint16_t)(adc * 16u + f->sel);
    uint32_t v = 0;
    if (f->waited_us < TL_MAT_SETTLE_US)
        return 4095;
    for (uint16_t r = 0; r < TL_MAT_ROWS; r++)
        v += f->rows[r] == 1 ? mat_truth(f->seq, r, c) : f->rows[r] == 2 ? 50u : 0u;
    return (uint16_t)(v > 4095 ? 4095 : v);
}

static void io_row(void *ctx, uint16_t r, uint8_t high)
{
    ((fake *)ctx)->rows[r] = high ? 1 : 0;
}

static tl_scan_io io = {io_select, io_wait_us, insole_adc, io_row, &F};

static void hal_write(void *ctx, const uint8_t *bytes, uint16_t n)
{
    (void)ctx;
    if (fwrite(bytes, 1, n, stdout) != n)
        exit(3);
}

static uint64_t hal_ticks(void *ctx)
{
    fake *f = ctx;
    return f->micros32 ? tl_ticks_extend32(&f->ext, (uint32_t)f->ticks) : f->ticks;
}

static void insole_capture(void *ctx, uint64_t t, uint32_t seq)
{
    (void)t;
    ((fake *)ctx)->seq = seq;
    tl_mux16_capture(&io, captured16, TL_MUX16_SENSELS);
}

static void insole_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    for (uint8_t i = 0; i < TL_MUX16_SENSELS; i++)
        tl_dev_value(d, captured16[i]);
}

static void mat_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)t;
    ((fake *)ctx)->seq = seq;
    tl_matscan_scan(&io, d, TL_MAT_ROWS, TL_MAT_COLS);
}

static void imu_capture(void *ctx, uint64_t t, uint32_t seq)
{
    fake *f = ctx;
    (void)t;
    if ((long)seq == f->fail_seq || f->n_dumps == 0)
        tl_mpu6050_fail(captured_imu);
    else
        tl_mpu6050_decode(f->dumps + (seq % f->n_dumps) * TL_MPU_BURST_BYTES, captured_imu);
}

static void imu_scan(void *ctx, tl_dev *d, uint64_t t, uint32_t seq)
{
    (void)ctx;
    (void)t;
    (void)seq;
    for (uint8_t i = 0; i < 6; i++)
        tl_dev_value(d, captured_imu[i]);
}

static void imu_calibration(void *ctx, uint32_t i, float *gain, float *offset)
{
    fake *f = ctx;
    *gain = tl_mpu6050_gain(i, f->range_g, f->range_dps);
    *offset = 0.0f;
}

static int usage(const char *msg)
{
    fprintf(stderr, "board_harness: %s\nusage: board_harness insole|mat|imu|line [--samples N] [--side S] "
                    "[--placement P] [--range-g G] [--range-dps D] [--regdump FILE] [--fail-seq K] "
                    "[--start-us U] [--print-config]\n", msg);
    return 2;
}

static int line_main(int argc, char **argv)
{
    uint64_t us = 0, step_us = 337, steps = 1000;
    uint32_t period_us = 10000, next_us;
    uint32_t k = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--start-us")) us = strtoull(argv[i + 1], 0, 10);
        else if (!strcmp(argv[i], "--step-us")) step_us = strtoull(argv[i + 1], 0, 10);
        else if (!strcmp(argv[i], "--steps")) steps = strtoull(argv[i + 1], 0, 10);
        else if (!strcmp(argv[i], "--period-us")) period_us = (uint32_t)strtoul(argv[i + 1], 0, 10);
        else return usage("unknown option");
    }
    next_us = (uint32_t)us; /* setup() */
    for (uint64_t s = 0; s < steps; s++, us += step_us) {
        uint16_t v[6];
        char line[TL_LINE_MAX(6)];
        size_t n;
        if (!tl_line_due((uint32_t)us, &next_us, period_us))
            continue;
        for (uint8_t i = 0; i < 6; i++)
            v[i] = (uint16_t)((k * 13u + i * 101u) % 1024u);
        k++;
        n = tl_line_format(line, sizeof line, (uint32_t)(us / 1000u), v, 6);
        if (n == 0 || fwrite(line, 1, n, stdout) != n)
            return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static tl_dev dev;
    static tl_desc desc;
    static tl_hal hal;
    static uint8_t in[65536];
    const char *side = "left", *placement = "pelvis", *regdump = 0;
    long samples = 10;
    int print_config = 0;
    if (argc < 2)
        return usage("no board kind");
    if (!strcmp(argv[1], "line"))
        return line_main(argc, argv);
    F.fail_seq = -1;
    F.range_g = 16;
    F.range_dps = 2000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : 0;
        if (!strcmp(a, "--print-config")) {
            print_config = 1;
            continue;
        }
        if (!v)
            return usage("an option lacks its value");
        i++;
        if (!strcmp(a, "--samples")) samples = atol(v);
        else if (!strcmp(a, "--side")) side = v;
        else if (!strcmp(a, "--placement")) placement = v;
        else if (!strcmp(a, "--range-g")) F.range_g = (uint16_t)atoi(v);
        else if (!strcmp(a, "--range-dps")) F.range_dps = (uint16_t)atoi(v);
        else if (!strcmp(a, "--regdump")) regdump = v;
        else if (!strcmp(a, "--fail-seq")) F.fail_seq = atol(v);
        else if (!strcmp(a, "--start-us")) F.ticks = strtoull(v, 0, 10);
        else return usage("unknown option");
    }
    for (uint16_t r = 0; r < TL_MAT_ROWS; r++)
        F.rows[r] = 2; /* floating until the port drives them */
    hal.write = hal_write;
    hal.ticks = hal_ticks;
    hal.ctx = &F;
    if (!strcmp(argv[1], "insole")) {
        tl_board_insole16_desc(&desc, "HOST-INSOLE", side);
        hal.capture = insole_capture;
        hal.scan = insole_scan;
    } else if (!strcmp(argv[1], "mat")) {
        tl_board_mat_desc(&desc, "HOST-MAT");
        io.adc_read = mat_adc;
        F.micros32 = 1;
        F.ticks &= 0xffffffffu; /* micros() at power-up */
        tl_matscan_init(&io, TL_MAT_ROWS);
        hal.scan = mat_scan;
    } else if (!strcmp(argv[1], "imu")) {
        uint8_t regs[TL_MPU_N_REGS][2];
        if (tl_mpu6050_config(F.range_g, F.range_dps, regs) != 0) {
            fprintf(stderr, "board_harness: the MPU-6050 has no range %u g / %u deg/s\n", F.range_g, F.range_dps);
            return 1;
        }
        if (print_config) {
            for (int i = 0; i < TL_MPU_N_REGS; i++)
                printf("%02x %02x\n", regs[i][0], regs[i][1]);
            return 0;
        }
        if (regdump) {
            FILE *fp = fopen(regdump, "rb");
            static uint8_t buf[TL_MPU_BURST_BYTES * 4096];
            size_t n;
            if (!fp)
                return usage("cannot open the register dump");
            n = fread(buf, 1, sizeof buf, fp);
            fclose(fp);
            F.dumps = buf;
            F.n_dumps = n / TL_MPU_BURST_BYTES;
        }
        tl_board_imu_desc(&desc, "HOST-IMU", placement, F.range_g, F.range_dps);
        hal.capture = imu_capture;
        hal.scan = imu_scan;
        hal.calibration = imu_calibration;
    } else {
        return usage("the board kind is insole, mat or imu");
    }
    if (tl_dev_init(&dev, &desc, &hal) != 0) {
        fprintf(stderr, "board_harness: the core refused the board's description\n");
        return 1;
    }
    size_t n_in = fread(in, 1, sizeof in, stdin);
    for (size_t i = 0; i < n_in; i++)
        tl_dev_rx(&dev, in[i]);
    long sent = 0;
    uint64_t period = desc.clock_hz / dev.rate_hz;
    sent += (long)tl_dev_poll(&dev); /* the commands (START: the first sample is due at once) */
    for (long step = 0; step < 10 * samples + 10 && sent < samples; step++) {
        sent += (long)tl_dev_poll(&dev);
        F.ticks += period;
    }
    fflush(stdout);
    return sent == samples ? 0 : 4;
}
