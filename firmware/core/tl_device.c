/* treadlab reference firmware: protocol v1 device logic (see tl_device.h and docs/firmware.md). */
#include "tl_device.h"

#include <string.h>

#define LINK_OVERHEAD 2u /* a DATA frame on the wire: COBS code bytes (about 1 per 254) and the 0x00 */

/* ------------------------------------------------------------------------------------------ helpers */

static uint8_t item_bytes(enum tl_dtype t) { return t == TL_U8 ? 1u : 2u; }

uint32_t tl_dev_n_values(const tl_desc *d)
{
    if (d->kind == TL_KIND_MAT)
        return (uint32_t)d->rows * d->cols;
    if (d->kind == TL_KIND_IMU)
        return d->n_channels;
    return d->sensels;
}

uint32_t tl_dev_data_bytes(const tl_desc *d) { return 1u + 4u + 8u + tl_dev_n_values(d) * item_bytes(d->dtype) + 4u; }

static uint32_t wire_bytes(uint32_t decoded) { return decoded + decoded / 254u + LINK_OVERHEAD; }

static void begin(tl_dev *dev, uint8_t type) { tl_msg_begin(&dev->tx, dev->hal->write, dev->hal->ctx, type); }

static void put_str(tl_cobs_enc *e, const char *s) { tl_msg_put(e, s, strlen(s)); }

/* Decimal text of v (no libc printf on a bare MCU). */
static void put_dec(tl_cobs_enc *e, uint64_t v)
{
    char buf[21];
    uint8_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + (uint8_t)(v % 10u));
        v /= 10u;
    } while (v != 0);
    tl_msg_put(e, buf + i, sizeof buf - i);
}

static void put_hex2(tl_cobs_enc *e, uint8_t v)
{
    static const char hex[] = "0123456789abcdef";
    char b[2];
    b[0] = hex[v >> 4];
    b[1] = hex[v & 15u];
    tl_msg_put(e, b, 2);
}

/* Micrometres as millimetres with up to three decimals ("8.5", "10", "0.125"). */
static void put_mm(tl_cobs_enc *e, uint32_t um)
{
    uint32_t frac = um % 1000u;
    put_dec(e, um / 1000u);
    if (frac != 0) {
        char b[4];
        uint8_t n = 4;
        b[0] = '.';
        b[1] = (char)('0' + frac / 100u);
        b[2] = (char)('0' + frac / 10u % 10u);
        b[3] = (char)('0' + frac % 10u);
        while (b[n - 1] == '0')
            n--;
        tl_msg_put(e, b, n);
    }
}

/* A JSON string, escaped. */
static void put_json_str(tl_cobs_enc *e, const char *s)
{
    tl_msg_u8(e, '"');
    for (; s != NULL && *s != '\0'; s++) {
        uint8_t c = (uint8_t)*s;
        if (c == '"' || c == '\\') {
            tl_msg_u8(e, '\\');
            tl_msg_u8(e, c);
        } else if (c < 0x20u) {
            put_str(e, "\\u00");
            put_hex2(e, c);
        } else {
            tl_msg_u8(e, c);
        }
    }
    tl_msg_u8(e, '"');
}

static void put_key(tl_cobs_enc *e, const char *key)
{
    tl_msg_u8(e, ',');
    put_json_str(e, key);
    tl_msg_u8(e, ':');
}

static void put_key_str(tl_cobs_enc *e, const char *key, const char *value)
{
    put_key(e, key);
    put_json_str(e, value);
}

static void put_key_dec(tl_cobs_enc *e, const char *key, uint64_t value)
{
    put_key(e, key);
    put_dec(e, value);
}

static void send_ack(tl_dev *dev, uint8_t command)
{
    begin(dev, TL_ACK);
    tl_msg_u8(&dev->tx, command);
    tl_msg_end(&dev->tx);
}

static void nak_begin(tl_dev *dev, uint8_t command, uint8_t code)
{
    begin(dev, TL_NAK);
    tl_msg_u8(&dev->tx, command);
    tl_msg_u8(&dev->tx, code);
}

static void send_nak(tl_dev *dev, uint8_t command, uint8_t code, const char *reason)
{
    nak_begin(dev, command, code);
    put_str(&dev->tx, reason);
    tl_msg_end(&dev->tx);
}

void tl_dev_log(tl_dev *dev, uint8_t level, const char *text)
{
    if (dev->in_message)
        return; /* not from inside a scan: the DATA message under way would be broken */
    begin(dev, TL_LOG);
    tl_msg_u8(&dev->tx, level);
    put_str(&dev->tx, text);
    tl_msg_end(&dev->tx);
}

/* ------------------------------------------------------------------------------------------ INFO */

static const char *const kind_names[] = {"insole", "mat", "imu"};
static const char *const dtype_names[] = {"u8", "u16", "i16"};

static int has_magnetometer(const tl_desc *d)
{
    uint8_t i;
    for (i = 0; i < d->n_channels; i++)
        if (d->channels[i][0] == 'm')
            return 1;
    return 0;
}

/* The INFO body, generated from the current state (rate_hz is the rate in force). */
static void info_body(tl_dev *dev, tl_cobs_enc *e)
{
    const tl_desc *d = dev->desc;
    uint8_t i;
    put_str(e, "{\"protocol\":1");
    put_key_str(e, "kind", kind_names[d->kind]);
    put_key_str(e, "model", d->model);
    put_key_str(e, "serial", d->serial);
    put_key_str(e, "firmware", d->firmware);
    put_key_str(e, "dtype", dtype_names[d->dtype]);
    put_key_dec(e, "adc_bits", d->adc_bits);
    put_key_dec(e, "rate_hz", dev->rate_hz);
    put_key(e, "rates_hz");
    tl_msg_u8(e, '[');
    for (i = 0; i < d->n_rates; i++) {
        if (i)
            tl_msg_u8(e, ',');
        put_dec(e, d->rates_hz[i]);
    }
    tl_msg_u8(e, ']');
    put_key_dec(e, "clock_hz", d->clock_hz);
    if (d->kind == TL_KIND_INSOLE) {
        put_key_str(e, "side", d->side);
        put_key_dec(e, "sensels", d->sensels);
        if (d->layout_json != NULL) {
            put_key(e, "layout");
            put_str(e, d->layout_json);
        } else if (d->layout_name != NULL) {
            put_key_str(e, "layout", d->layout_name);
        }
    } else if (d->kind == TL_KIND_MAT) {
        put_key_dec(e, "rows", d->rows);
        put_key_dec(e, "cols", d->cols);
        put_key(e, "pitch_mm");
        tl_msg_u8(e, '[');
        put_mm(e, d->pitch_um[0]);
        tl_msg_u8(e, ',');
        put_mm(e, d->pitch_um[1]);
        tl_msg_u8(e, ']');
        put_key_str(e, "belt_axis", d->belt_axis);
    } else {
        put_key(e, "channels");
        tl_msg_u8(e, '[');
        for (i = 0; i < d->n_channels; i++) {
            if (i)
                tl_msg_u8(e, ',');
            put_json_str(e, d->channels[i]);
        }
        tl_msg_u8(e, ']');
        put_key_str(e, "placement", d->placement);
        put_key_dec(e, "range_g", d->range_g);
        put_key_dec(e, "range_dps", d->range_dps);
        if (has_magnetometer(d))
            put_key_dec(e, "range_ut", d->range_ut);
    }
    put_key_dec(e, "rx_bad_frames", dev->rx_bad_frames);
    put_key_dec(e, "rx_oversize", dev->rx_oversize);
    put_key_dec(e, "skipped_samples", dev->skipped_samples);
    put_key_dec(e, "bad_scans", dev->bad_scans);
    tl_msg_u8(e, '}');
}

static void send_info(tl_dev *dev)
{
    tl_cobs_enc counter;
    uint32_t n;
    tl_msg_begin(&counter, NULL, NULL, TL_INFO); /* a dry run counts the bytes: nothing is sent */
    info_body(dev, &counter);
    n = counter.count + 4u;
    if (wire_bytes(n) > TL_MAX_FRAME_BYTES) {
        nak_begin(dev, TL_IDENTIFY, TL_NAK_BAD_ARGUMENT);
        put_str(&dev->tx, "INFO of ");
        put_dec(&dev->tx, n);
        put_str(&dev->tx, " bytes exceeds the longest frame a host accepts");
        tl_msg_end(&dev->tx);
        return;
    }
    begin(dev, TL_INFO);
    info_body(dev, &dev->tx);
    tl_msg_end(&dev->tx);
}

/* ------------------------------------------------------------------------------------------ commands */

static void rebase(tl_dev *dev)
{
    dev->due_ticks = dev->hal->ticks(dev->hal->ctx);
    dev->due_rem = 0;
}

static int rate_supported(const tl_desc *d, uint16_t rate)
{
    uint8_t i;
    for (i = 0; i < d->n_rates; i++)
        if (d->rates_hz[i] == rate)
            return 1;
    return 0;
}

static void set_rate(tl_dev *dev, uint16_t rate)
{
    const tl_desc *d = dev->desc;
    uint8_t i;
    uint32_t frame = wire_bytes(tl_dev_data_bytes(d));
    if (!rate_supported(d, rate)) {
        nak_begin(dev, TL_SET_RATE, TL_NAK_UNSUPPORTED_RATE);
        put_str(&dev->tx, "rate ");
        put_dec(&dev->tx, rate);
        put_str(&dev->tx, " Hz not supported (supported:");
        for (i = 0; i < d->n_rates; i++) {
            tl_msg_u8(&dev->tx, ' ');
            put_dec(&dev->tx, d->rates_hz[i]);
        }
        put_str(&dev->tx, ")");
        tl_msg_end(&dev->tx);
        return;
    }
    if (d->link_bytes_per_s != 0 && (uint64_t)rate * frame > d->link_bytes_per_s) {
        nak_begin(dev, TL_SET_RATE, TL_NAK_UNSUPPORTED_RATE);
        put_str(&dev->tx, "rate ");
        put_dec(&dev->tx, rate);
        put_str(&dev->tx, " Hz needs ");
        put_dec(&dev->tx, (uint64_t)rate * frame);
        put_str(&dev->tx, " B/s, the link carries ");
        put_dec(&dev->tx, d->link_bytes_per_s);
        tl_msg_end(&dev->tx);
        return;
    }
    dev->rate_hz = rate;
    if (dev->streaming)
        rebase(dev);
    send_ack(dev, TL_SET_RATE);
}

static void send_calibration(tl_dev *dev)
{
    const tl_desc *d = dev->desc;
    uint32_t n = tl_dev_n_values(d), i;
    if (n > 0xFFFFu || wire_bytes(8u + 8u * n) > TL_MAX_FRAME_BYTES) {
        send_nak(dev, TL_GET_CALIBRATION, TL_NAK_BAD_ARGUMENT, "too many values for one CALIBRATION message");
        return;
    }
    begin(dev, TL_CALIBRATION);
    tl_msg_u8(&dev->tx, (uint8_t)d->unit);
    tl_msg_u16(&dev->tx, (uint16_t)n);
    for (i = 0; i < n; i++) {
        float gain = 1.0f, offset = 0.0f;
        if (dev->hal->calibration != NULL)
            dev->hal->calibration(dev->hal->ctx, i, &gain, &offset);
        tl_msg_f32(&dev->tx, gain);
        tl_msg_f32(&dev->tx, offset);
    }
    tl_msg_end(&dev->tx);
}

static uint64_t get_u64(const uint8_t *b)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static void handle(tl_dev *dev, const uint8_t *msg, uint8_t len)
{
    uint8_t type = msg[0];
    uint8_t body_len = (uint8_t)(len - 5u);
    const uint8_t *body = msg + 1;
    int empty = body_len == 0;
    switch (type) {
    case TL_IDENTIFY:
        if (empty)
            send_info(dev);
        break;
    case TL_START:
        if (empty) {
            if (!dev->streaming) {
                dev->streaming = 1;
                rebase(dev);
            }
            send_ack(dev, type);
        }
        break;
    case TL_STOP:
        if (empty) {
            dev->streaming = 0;
            send_ack(dev, type);
        }
        break;
    case TL_SET_RATE:
        if (body_len == 2) {
            set_rate(dev, (uint16_t)(body[0] | (body[1] << 8)));
            return;
        }
        break;
    case TL_GET_CALIBRATION:
        if (empty)
            send_calibration(dev);
        break;
    case TL_PING:
        if (body_len == 8) {
            begin(dev, TL_PONG);
            tl_msg_u64(&dev->tx, get_u64(body));
            tl_msg_u64(&dev->tx, dev->hal->ticks(dev->hal->ctx));
            tl_msg_end(&dev->tx);
            return;
        }
        break;
    default:
        nak_begin(dev, type, TL_NAK_UNKNOWN_COMMAND);
        put_str(&dev->tx, "unknown command 0x");
        put_hex2(&dev->tx, type);
        tl_msg_end(&dev->tx);
        return;
    }
    if ((type == TL_SET_RATE && body_len != 2) || (type == TL_PING && body_len != 8) ||
        (type != TL_SET_RATE && type != TL_PING && !empty)) {
        nak_begin(dev, type, TL_NAK_BAD_ARGUMENT);
        put_str(&dev->tx, "body of ");
        put_dec(&dev->tx, body_len);
        put_str(&dev->tx, " bytes is the wrong length");
        tl_msg_end(&dev->tx);
    }
}

/* ------------------------------------------------------------------------------------------ receive */

void tl_dev_rx(tl_dev *dev, uint8_t byte)
{
    int status = tl_cobs_dec_byte(&dev->rx, byte);
    uint8_t next;
    if (status == TL_RX_NONE)
        return;
    if (status == TL_RX_OVERSIZE) {
        dev->rx_oversize++;
        dev->log_oversize = 1;
        return;
    }
    if (status == TL_RX_BAD_COBS || dev->rx.len < 5u || tl_crc32(dev->rx.buf, dev->rx.len) != TL_CRC_RESIDUE) {
        dev->rx_bad_frames++; /* line noise: dropped, counted (INFO rx_bad_frames) */
        return;
    }
    next = (uint8_t)((dev->cmd_head + 1u) % TL_CMD_QUEUE);
    if (next == dev->cmd_tail) {
        dev->rx_queue_full++;
        dev->log_queue_full = 1;
        return;
    }
    memcpy(dev->cmd[dev->cmd_head], dev->rx.buf, dev->rx.len);
    dev->cmd_len[dev->cmd_head] = (uint8_t)dev->rx.len;
    dev->cmd_head = next;
}

/* ------------------------------------------------------------------------------------------ sampling */

void tl_dev_value(tl_dev *dev, int32_t v)
{
    enum tl_dtype t = dev->desc->dtype;
    if (dev->values_sent++ >= tl_dev_n_values(dev->desc))
        return; /* one too many: the message is aborted when the scan returns */
    if (t == TL_U8) {
        tl_msg_u8(&dev->tx, (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v));
    } else if (t == TL_U16) {
        tl_msg_u16(&dev->tx, (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v));
    } else {
        int32_t c = v < -32768 ? -32768 : v > 32767 ? 32767 : v;
        tl_msg_u16(&dev->tx, (uint16_t)(c & 0xFFFF));
    }
}

static void advance(tl_dev *dev, uint64_t *due, uint32_t *rem)
{
    uint32_t clock = dev->desc->clock_hz;
    *due += clock / dev->rate_hz;
    *rem += clock % dev->rate_hz;
    if (*rem >= dev->rate_hz) {
        *rem -= dev->rate_hz;
        *due += 1u;
    }
}

static void send_sample(tl_dev *dev, uint64_t t)
{
    uint32_t n = tl_dev_n_values(dev->desc);
    if (dev->hal->capture != NULL)
        dev->hal->capture(dev->hal->ctx, t, dev->seq);
    begin(dev, TL_DATA);
    tl_msg_u32(&dev->tx, dev->seq);
    tl_msg_u64(&dev->tx, t);
    dev->values_sent = 0;
    dev->in_message = 1;
    dev->hal->scan(dev->hal->ctx, dev, t, dev->seq);
    dev->in_message = 0;
    if (dev->values_sent == n) {
        tl_msg_end(&dev->tx);
    } else {
        tl_msg_abort(&dev->tx); /* the host counts a bad frame, and the LOG below says why */
        dev->bad_scans++;
        dev->log_bad_scan = 1;
    }
    dev->seq++;
}

static void send_owed_logs(tl_dev *dev)
{
    if (dev->log_oversize) {
        dev->log_oversize = 0;
        begin(dev, TL_LOG);
        tl_msg_u8(&dev->tx, TL_LOG_WARNING);
        put_str(&dev->tx, "dropped a received frame longer than the ");
        put_dec(&dev->tx, TL_RX_MAX);
        put_str(&dev->tx, "-byte command buffer (");
        put_dec(&dev->tx, dev->rx_oversize);
        put_str(&dev->tx, " so far)");
        tl_msg_end(&dev->tx);
    }
    if (dev->log_queue_full) {
        dev->log_queue_full = 0;
        tl_dev_log(dev, TL_LOG_WARNING, "dropped a command: the command queue was full");
    }
    if (dev->log_skipped) {
        begin(dev, TL_LOG);
        tl_msg_u8(&dev->tx, TL_LOG_WARNING);
        put_str(&dev->tx, "skipped ");
        put_dec(&dev->tx, dev->log_skipped);
        put_str(&dev->tx, " samples: the link or the scan is too slow for ");
        put_dec(&dev->tx, dev->rate_hz);
        put_str(&dev->tx, " Hz (seq jumps over them)");
        tl_msg_end(&dev->tx);
        dev->log_skipped = 0;
    }
    if (dev->log_bad_scan) {
        dev->log_bad_scan = 0;
        begin(dev, TL_LOG);
        tl_msg_u8(&dev->tx, TL_LOG_ERROR);
        put_str(&dev->tx, "scan gave ");
        put_dec(&dev->tx, dev->values_sent);
        put_str(&dev->tx, " values instead of ");
        put_dec(&dev->tx, tl_dev_n_values(dev->desc));
        put_str(&dev->tx, "; the sample was sent with a bad CRC");
        tl_msg_end(&dev->tx);
    }
}

uint32_t tl_dev_poll(tl_dev *dev)
{
    uint32_t sent = 0, due_n = 0;
    uint64_t now, due;
    uint32_t rem;
    while (dev->cmd_tail != dev->cmd_head) {
        uint8_t i = dev->cmd_tail;
        handle(dev, dev->cmd[i], dev->cmd_len[i]);
        dev->cmd_tail = (uint8_t)((i + 1u) % TL_CMD_QUEUE);
    }
    send_owed_logs(dev);
    if (!dev->streaming)
        return 0;
    now = dev->hal->ticks(dev->hal->ctx);
    due = dev->due_ticks;
    rem = dev->due_rem;
    while (due <= now && due_n < 0xFFFFFFFFul) { /* how many fell due (additions only) */
        due_n++;
        advance(dev, &due, &rem);
    }
    if (due_n > dev->desc->max_burst) { /* too late to send them all: skip the oldest, say so */
        uint32_t skip = due_n - dev->desc->max_burst;
        uint32_t i;
        for (i = 0; i < skip; i++)
            advance(dev, &dev->due_ticks, &dev->due_rem);
        dev->seq += skip;
        dev->skipped_samples += skip;
        dev->log_skipped += skip;
        due_n -= skip;
    }
    while (due_n--) {
        send_sample(dev, dev->due_ticks);
        advance(dev, &dev->due_ticks, &dev->due_rem);
        sent++;
    }
    if (dev->log_skipped || dev->log_bad_scan)
        send_owed_logs(dev);
    return sent;
}

uint64_t tl_dev_ticks_to_next(tl_dev *dev)
{
    uint64_t now;
    if (!dev->streaming)
        return UINT64_MAX;
    now = dev->hal->ticks(dev->hal->ctx);
    return dev->due_ticks > now ? dev->due_ticks - now : 0;
}

/* ------------------------------------------------------------------------------------------ power-up */

int tl_dev_init(tl_dev *dev, const tl_desc *desc, const tl_hal *hal)
{
    uint32_t n = tl_dev_n_values(desc);
    memset(dev, 0, sizeof *dev);
    dev->desc = desc;
    dev->hal = hal;
    tl_cobs_dec_init(&dev->rx);
    if (hal->write == NULL || hal->ticks == NULL || hal->scan == NULL || desc->clock_hz == 0 || n == 0 ||
        desc->n_rates == 0 || desc->rates_hz == NULL || !rate_supported(desc, desc->rate_hz) ||
        desc->max_burst == 0 || (desc->kind == TL_KIND_IMU && desc->channels == NULL))
        return -1;
    if (wire_bytes(tl_dev_data_bytes(desc)) > TL_MAX_FRAME_BYTES)
        return -2;
    dev->rate_hz = desc->rate_hz;
    return 0;
}
