/* treadlab reference firmware: CRC-32 and streaming COBS (see tl_wire.h). */
#include "tl_wire.h"

#include <string.h>

/* CRC-32/ISO-HDLC, reflected polynomial 0xEDB88320, four bits at a time: a 64-byte table fits any MCU. */
static const uint32_t crc_nibble[16] = {
    0x00000000ul, 0x1DB71064ul, 0x3B6E20C8ul, 0x26D930ACul, 0x76DC4190ul, 0x6B6B51F4ul, 0x4DB26158ul, 0x5005713Cul,
    0xEDB88320ul, 0xF00F9344ul, 0xD6D6A3E8ul, 0xCB61B38Cul, 0x9B64C2B0ul, 0x86D3D2D4ul, 0xA00AE278ul, 0xBDBDF21Cul};

uint32_t tl_crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return crc;
}

uint32_t tl_crc32_final(uint32_t crc) { return crc ^ 0xFFFFFFFFul; }

uint32_t tl_crc32(const uint8_t *data, size_t n) { return tl_crc32_final(tl_crc32_update(TL_CRC_INIT, data, n)); }

/* ------------------------------------------------------------------------------------------ COBS encoding */

static void enc_flush(tl_cobs_enc *e)
{
    e->block[0] = (uint8_t)(e->n + 1u);
    if (e->write != NULL)
        e->write(e->ctx, e->block, (uint16_t)(e->n + 1u));
    e->n = 0;
}

void tl_cobs_enc_init(tl_cobs_enc *e, tl_write_fn write, void *ctx)
{
    e->n = 0;
    e->after_full = 0;
    e->crc = TL_CRC_INIT;
    e->count = 0;
    e->write = write;
    e->ctx = ctx;
}

void tl_cobs_enc_put(tl_cobs_enc *e, const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t b = data[i];
        e->after_full = 0;
        if (b == 0) {
            enc_flush(e); /* code = distance to this zero */
        } else {
            e->block[++e->n] = b;
            if (e->n == 254) { /* a full block: code 0xFF, no zero implied */
                enc_flush(e);
                e->after_full = 1;
            }
        }
    }
}

void tl_cobs_enc_finish(tl_cobs_enc *e, int delimiter)
{
    static const uint8_t zero = 0;
    /* Canonical COBS: a message that ends right after a full block gets no extra (empty) block. */
    if (!(e->n == 0 && e->after_full))
        enc_flush(e);
    e->after_full = 0;
    if (delimiter && e->write != NULL)
        e->write(e->ctx, &zero, 1);
}

/* ------------------------------------------------------------------------------------------ messages */

void tl_msg_begin(tl_cobs_enc *e, tl_write_fn write, void *ctx, uint8_t type)
{
    tl_cobs_enc_init(e, write, ctx);
    tl_msg_put(e, &type, 1);
}

void tl_msg_put(tl_cobs_enc *e, const void *data, size_t n)
{
    e->crc = tl_crc32_update(e->crc, (const uint8_t *)data, n);
    e->count += (uint32_t)n;
    tl_cobs_enc_put(e, (const uint8_t *)data, n);
}

void tl_msg_u8(tl_cobs_enc *e, uint8_t v) { tl_msg_put(e, &v, 1); }

void tl_msg_u16(tl_cobs_enc *e, uint16_t v)
{
    uint8_t b[2];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    tl_msg_put(e, b, 2);
}

void tl_msg_u32(tl_cobs_enc *e, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    tl_msg_put(e, b, 4);
}

void tl_msg_u64(tl_cobs_enc *e, uint64_t v)
{
    tl_msg_u32(e, (uint32_t)v);
    tl_msg_u32(e, (uint32_t)(v >> 32));
}

void tl_msg_f32(tl_cobs_enc *e, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4); /* IEEE-754 binary32 on every target this builds for */
    tl_msg_u32(e, bits);
}

void tl_msg_end(tl_cobs_enc *e)
{
    uint32_t crc = tl_crc32_final(e->crc);
    uint8_t b[4];
    b[0] = (uint8_t)crc;
    b[1] = (uint8_t)(crc >> 8);
    b[2] = (uint8_t)(crc >> 16);
    b[3] = (uint8_t)(crc >> 24);
    tl_cobs_enc_put(e, b, 4);
    tl_cobs_enc_finish(e, 1);
}

void tl_msg_abort(tl_cobs_enc *e)
{
    uint32_t crc = ~tl_crc32_final(e->crc); /* the complement of the right CRC never matches */
    uint8_t b[4];
    b[0] = (uint8_t)crc;
    b[1] = (uint8_t)(crc >> 8);
    b[2] = (uint8_t)(crc >> 16);
    b[3] = (uint8_t)(crc >> 24);
    tl_cobs_enc_put(e, b, 4);
    tl_cobs_enc_finish(e, 1);
}

/* ------------------------------------------------------------------------------------------ COBS decoding */

void tl_cobs_dec_init(tl_cobs_dec *d)
{
    d->len = 0;
    d->total = 0;
    d->raw = 0;
    d->code = 0;
    d->left = 0;
    d->zero_due = 0;
}

static void dec_keep(tl_cobs_dec *d, uint8_t b)
{
    if (d->total < TL_RX_MAX)
        d->buf[d->len++] = b;
    d->total++;
}

int tl_cobs_dec_byte(tl_cobs_dec *d, uint8_t byte)
{
    if (byte == 0) {
        int status;
        if (d->raw == 0) {
            d->len = 0; /* an empty frame: a flush, not a message */
            return TL_RX_NONE;
        }
        if (d->left != 0)
            status = TL_RX_BAD_COBS; /* the frame ended inside a block */
        else if (d->total > TL_RX_MAX)
            status = TL_RX_OVERSIZE;
        else
            status = TL_RX_FRAME;
        d->raw = 0; /* d->buf and d->len stay as they are until the next frame starts */
        d->total = 0;
        d->left = 0;
        d->zero_due = 0;
        return status;
    }
    if (d->raw == 0)
        d->len = 0;
    if (d->raw != 0xFFFFFFFFul)
        d->raw++;
    if (d->left == 0) { /* a code byte */
        if (d->zero_due)
            dec_keep(d, 0);
        d->code = byte;
        d->left = (uint8_t)(byte - 1u);
        d->zero_due = (uint8_t)(d->left == 0 && byte != 0xFF);
    } else {
        dec_keep(d, byte);
        d->left--;
        if (d->left == 0)
            d->zero_due = (uint8_t)(d->code != 0xFF);
    }
    return TL_RX_NONE;
}
