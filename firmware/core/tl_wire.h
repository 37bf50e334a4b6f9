/* treadlab reference firmware: protocol v1 framing (CRC-32, COBS), streaming, no dynamic memory.
 *
 * A message on the wire is COBS(type | body | crc32 LE) followed by 0x00 (docs/protocol.md). The encoder streams:
 * it holds one COBS block (at most 254 bytes) and hands each finished block to the hardware layer's write
 * function, so a message of any length (a 1 KB INFO, a 22 KB mat frame) goes out without a message buffer and is
 * never truncated. The decoder is fed bytes as they arrive and decodes into a small fixed buffer; a frame that
 * does not fit is reported (tl_rx_status), never cut. Portable C99: <stdint.h> and <string.h> only. */
#ifndef TL_WIRE_H
#define TL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the core is C; board sketches may be C++ (Arduino) */
#endif

/* CRC-32/ISO-HDLC (zlib's crc32). Start with TL_CRC_INIT, feed bytes, finish with tl_crc32_final. */
#define TL_CRC_INIT 0xFFFFFFFFul
/* tl_crc32 of a message followed by its own little-endian CRC is always this constant. */
#define TL_CRC_RESIDUE 0x2144DF1Cul
uint32_t tl_crc32_update(uint32_t crc, const uint8_t *data, size_t n);
uint32_t tl_crc32_final(uint32_t crc);
uint32_t tl_crc32(const uint8_t *data, size_t n);

/* Where encoded bytes go: called with up to 255 bytes at a time. */
typedef void (*tl_write_fn)(void *ctx, const uint8_t *bytes, uint16_t n);

/* Streaming COBS encoder of one frame. */
typedef struct {
    uint8_t block[255]; /* block[0] is the code byte, block[1..254] the data */
    uint8_t n;          /* data bytes in the current block */
    uint8_t after_full; /* the previous block was a full 0xFF block and nothing followed yet */
    uint32_t crc;       /* running CRC of the message bytes */
    uint32_t count;     /* message bytes so far (type + body [+ crc]) */
    tl_write_fn write;
    void *ctx;
} tl_cobs_enc;

/* Raw COBS of arbitrary bytes (no CRC, no delimiter unless tl_cobs_enc_finish is told to add one). */
void tl_cobs_enc_init(tl_cobs_enc *e, tl_write_fn write, void *ctx);
void tl_cobs_enc_put(tl_cobs_enc *e, const uint8_t *data, size_t n);
void tl_cobs_enc_finish(tl_cobs_enc *e, int delimiter);

/* A protocol v1 message: type, body bytes (CRC kept as they pass), then crc32 LE, COBS end and 0x00. */
void tl_msg_begin(tl_cobs_enc *e, tl_write_fn write, void *ctx, uint8_t type);
void tl_msg_put(tl_cobs_enc *e, const void *data, size_t n);
void tl_msg_u8(tl_cobs_enc *e, uint8_t v);
void tl_msg_u16(tl_cobs_enc *e, uint16_t v);
void tl_msg_u32(tl_cobs_enc *e, uint32_t v);
void tl_msg_u64(tl_cobs_enc *e, uint64_t v);
void tl_msg_f32(tl_cobs_enc *e, float v);
void tl_msg_end(tl_cobs_enc *e);
/* End a message that went wrong half-way: the frame is closed with a CRC that cannot match, so the host drops
 * and counts it instead of reading a damaged message as a good one. */
void tl_msg_abort(tl_cobs_enc *e);

/* Streaming COBS decoder into a fixed buffer. */
#ifndef TL_RX_MAX
#define TL_RX_MAX 32 /* the longest command is PING: 1 + 8 + 4 bytes */
#endif

enum tl_rx_status {
    TL_RX_NONE = 0,     /* no frame ended with this byte */
    TL_RX_FRAME = 1,    /* a frame ended and decoded: buf[0..len) */
    TL_RX_BAD_COBS = 2, /* a frame ended that is not valid COBS */
    TL_RX_OVERSIZE = 3  /* a frame ended whose decoded length (total) exceeds the buffer */
};

typedef struct {
    uint8_t buf[TL_RX_MAX];
    uint32_t len;        /* decoded bytes kept */
    uint32_t total;      /* decoded bytes of the frame, kept or not */
    uint32_t raw;        /* encoded bytes of the frame so far */
    uint8_t code;        /* code byte of the current block */
    uint8_t left;        /* data bytes still expected in the current block (0: a code byte comes next) */
    uint8_t zero_due;    /* the current block ended short: a 0x00 comes before the next block's data */
} tl_cobs_dec;

void tl_cobs_dec_init(tl_cobs_dec *d);
/* Feed one received byte; returns a tl_rx_status. After TL_RX_FRAME, d->buf and d->len hold the frame until
 * the next byte is fed. Empty frames (0x00 0x00) give TL_RX_NONE. */
int tl_cobs_dec_byte(tl_cobs_dec *d, uint8_t byte);

#ifdef __cplusplus
}
#endif

#endif
