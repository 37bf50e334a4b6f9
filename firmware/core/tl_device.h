/* treadlab reference firmware: the protocol v1 device (commands, INFO, DATA), independent of any hardware.
 *
 * A port supplies a tl_hal (send bytes, read the tick counter, scan the sensors, optionally the calibration) and a
 * tl_desc (what the device is), calls tl_dev_rx() with every received byte (from its UART interrupt or read loop)
 * and tl_dev_poll() from its main loop. The core answers every command (docs/protocol.md), takes a sample whenever
 * one falls due on the tick counter and streams it as DATA. Nothing is cut short: a frame too long for the
 * command buffer, samples the link could not carry and a scan that gave the wrong number of values are each
 * reported to the host (a LOG message, counters in INFO, a gap in seq). No dynamic memory; C99 with <stdint.h> and
 * <string.h> only. */
#ifndef TL_DEVICE_H
#define TL_DEVICE_H

#include <stdint.h>

#include "tl_wire.h"

#ifdef __cplusplus
extern "C" { /* the core is C; board sketches may be C++ (Arduino) */
#endif

/* Message types (docs/protocol.md). */
#define TL_INFO 0x01
#define TL_ACK 0x02
#define TL_NAK 0x03
#define TL_CALIBRATION 0x05
#define TL_PONG 0x06
#define TL_LOG 0x07
#define TL_DATA 0x10
#define TL_IDENTIFY 0x81
#define TL_START 0x82
#define TL_STOP 0x83
#define TL_SET_RATE 0x84
#define TL_GET_CALIBRATION 0x85
#define TL_PING 0x86

#define TL_NAK_UNKNOWN_COMMAND 1
#define TL_NAK_BAD_ARGUMENT 2
#define TL_NAK_UNSUPPORTED_RATE 3
#define TL_NAK_BUSY 4

#define TL_LOG_DEBUG 10
#define TL_LOG_INFO 20
#define TL_LOG_WARNING 30
#define TL_LOG_ERROR 40

/* The longest frame a treadlab host accepts (protocol.py MAX_FRAME_BYTES). */
#define TL_MAX_FRAME_BYTES (256ul * 1024ul)

#ifndef TL_CMD_QUEUE
#define TL_CMD_QUEUE 4
#endif

enum tl_kind { TL_KIND_INSOLE = 0, TL_KIND_MAT = 1, TL_KIND_IMU = 2 };
enum tl_dtype { TL_U8 = 0, TL_U16 = 1, TL_I16 = 2 };
/* CALIBRATION unit codes: newton per sensel, kPa, imu (g, deg/s, uT per channel). */
enum tl_unit { TL_UNIT_N = 0, TL_UNIT_KPA = 1, TL_UNIT_IMU = 2 };

struct tl_dev;

typedef struct {
    /* Send bytes to the host (blocking or queued; the core never sends a partial message). */
    void (*write)(void *ctx, const uint8_t *bytes, uint16_t n);
    /* The device clock: a free-running, non-decreasing tick counter at desc.clock_hz. */
    uint64_t (*ticks)(void *ctx);
    /* Take one sample at device time t: call tl_dev_value() once per value, in wire order. */
    void (*scan)(void *ctx, struct tl_dev *dev, uint64_t t, uint32_t seq);
    /* Calibration of value i (may be NULL: gain 1, offset 0). */
    void (*calibration)(void *ctx, uint32_t i, float *gain, float *offset);
    void *ctx;
    /* Optional: take the sample now, before any byte of its DATA message goes out (a port whose values fit in a
     * small buffer converts them here, so that sending the header does not delay the conversion); scan then
     * hands the values over. NULL: the scan converts as it pushes. */
    void (*capture)(void *ctx, uint64_t t, uint32_t seq);
} tl_hal;

typedef struct {
    enum tl_kind kind;
    enum tl_dtype dtype;
    uint8_t adc_bits;
    uint32_t clock_hz;
    const uint16_t *rates_hz; /* rates SET_RATE accepts */
    uint8_t n_rates;
    uint16_t rate_hz;         /* rate at power-up (one of rates_hz) */
    const char *model, *serial, *firmware;
    enum tl_unit unit;
    /* insole */
    const char *side;         /* "left" or "right" */
    uint16_t sensels;
    const char *layout_name;  /* a layout the host knows ("insole16"), or NULL */
    const char *layout_json;  /* or an inline layout object, sent verbatim (NULL: none) */
    /* mat */
    uint16_t rows, cols;
    uint32_t pitch_um[2];     /* sensel pitch along rows and along columns, micrometres */
    const char *belt_axis;    /* "rows" or "cols" */
    /* imu */
    const char *const *channels; /* names in wire order, a subset of ax ay az gx gy gz mx my mz */
    uint8_t n_channels;
    const char *placement;    /* pelvis, trunk, tibia_left, tibia_right */
    uint16_t range_g, range_dps, range_ut;
    /* The link's payload capacity in bytes per second (0: not limited); SET_RATE refuses rates it cannot carry. */
    uint32_t link_bytes_per_s;
    /* Samples a late poll may send in one burst (timer FIFO); older due samples are skipped, counted and logged. */
    uint16_t max_burst;
} tl_desc;

typedef struct tl_dev {
    const tl_desc *desc;
    const tl_hal *hal;
    tl_cobs_dec rx;
    tl_cobs_enc tx;
    /* Commands decoded by tl_dev_rx (perhaps in an interrupt) wait here for tl_dev_poll (single producer, single
     * consumer: the indices are written by one side each). */
    uint8_t cmd[TL_CMD_QUEUE][TL_RX_MAX];
    uint8_t cmd_len[TL_CMD_QUEUE];
    volatile uint8_t cmd_head, cmd_tail;
    uint16_t rate_hz;
    uint8_t streaming;
    uint32_t seq;          /* seq of the next sample */
    uint64_t due_ticks;    /* device time of the next sample */
    uint32_t due_rem;      /* fraction of a tick of due_ticks, in 1/rate_hz (exact schedule, no drift) */
    uint32_t values_sent;  /* values pushed by the scan in progress */
    /* counters reported in INFO */
    volatile uint32_t rx_bad_frames, rx_oversize, rx_queue_full;
    uint32_t skipped_samples, bad_scans;
    volatile uint8_t log_oversize, log_queue_full; /* LOGs owed from tl_dev_rx, sent by tl_dev_poll */
    uint32_t log_skipped;              /* skipped samples not yet reported in a LOG */
    uint8_t log_bad_scan;
    uint8_t in_message;    /* a message is being sent (guards against sending from inside a scan) */
} tl_dev;

/* Check the description and power up (stopped, seq 0). Returns 0, or a negative error code:
 * -1 bad description, -2 a DATA frame would exceed TL_MAX_FRAME_BYTES. */
int tl_dev_init(tl_dev *dev, const tl_desc *desc, const tl_hal *hal);
/* One received byte (any time between polls, not from inside a scan). */
void tl_dev_rx(tl_dev *dev, uint8_t byte);
/* Send the samples that fell due (call often: at least once per sample period). Returns the samples sent. */
uint32_t tl_dev_poll(tl_dev *dev);
/* From the scan: the next value (clipped to the dtype's range). */
void tl_dev_value(tl_dev *dev, int32_t value);
/* Send a LOG message. */
void tl_dev_log(tl_dev *dev, uint8_t level, const char *text);
/* Bytes of one decoded DATA message (type + seq + t + values + crc). */
uint32_t tl_dev_data_bytes(const tl_desc *desc);
/* Values per DATA message. */
uint32_t tl_dev_n_values(const tl_desc *desc);
/* Ticks until the next sample falls due (0: due now; UINT64_MAX: not streaming), for ports that sleep. */
uint64_t tl_dev_ticks_to_next(tl_dev *dev);

#ifdef __cplusplus
}
#endif

#endif
