/* tl_cobs_tool: the firmware's framing code behind stdin/stdout, for the unit tests (tests/test_firmware_core.py).
 *
 *   tl_cobs_tool MODE < records > records
 *
 * A record is a u32 little-endian length and that many bytes. Per input record, the output record holds:
 *   encode   the COBS encoding of the bytes (no delimiter), by the streaming encoder
 *   decode   a u8 status (tl_rx_status) and the decoded bytes, the input fed byte by byte and then a 0x00
 *   message  the whole wire frame of a message whose type and body are the bytes (COBS, CRC-32 and 0x00)
 *   crc      the CRC-32 of the bytes, u32 little-endian
 * Built with a large TL_RX_MAX so that long frames decode here; the device build keeps the small one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tl_wire.h"

static uint8_t out[1 << 20];
static size_t out_n;

static void sink(void *ctx, const uint8_t *bytes, uint16_t n)
{
    (void)ctx;
    memcpy(out + out_n, bytes, n);
    out_n += n;
}

static int read_exact(uint8_t *buf, size_t n) { return fread(buf, 1, n, stdin) == n; }

static void put_record(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    uint8_t len[4];
    size_t n = na + nb;
    len[0] = (uint8_t)n;
    len[1] = (uint8_t)(n >> 8);
    len[2] = (uint8_t)(n >> 16);
    len[3] = (uint8_t)(n >> 24);
    fwrite(len, 1, 4, stdout);
    fwrite(a, 1, na, stdout);
    fwrite(b, 1, nb, stdout);
}

int main(int argc, char **argv)
{
    static uint8_t in[1 << 20];
    static tl_cobs_enc enc;
    static tl_cobs_dec dec;
    const char *mode = argc > 1 ? argv[1] : "";
    uint8_t len[4];
    if (strcmp(mode, "encode") && strcmp(mode, "decode") && strcmp(mode, "message") && strcmp(mode, "crc")) {
        fprintf(stderr, "usage: tl_cobs_tool encode|decode|message|crc < records\n");
        return 2;
    }
    while (read_exact(len, 4)) {
        size_t n = (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24, i;
        if (n > sizeof in || !read_exact(in, n))
            return 3;
        out_n = 0;
        if (!strcmp(mode, "encode")) {
            tl_cobs_enc_init(&enc, sink, NULL);
            tl_cobs_enc_put(&enc, in, n);
            tl_cobs_enc_finish(&enc, 0);
            put_record(out, out_n, NULL, 0);
        } else if (!strcmp(mode, "decode")) {
            uint8_t status = 0;
            tl_cobs_dec_init(&dec);
            for (i = 0; i < n; i++)
                tl_cobs_dec_byte(&dec, in[i]);
            status = (uint8_t)tl_cobs_dec_byte(&dec, 0);
            put_record(&status, 1, dec.buf, status == TL_RX_FRAME ? dec.len : 0);
        } else if (!strcmp(mode, "message")) {
            if (n == 0)
                return 4;
            tl_msg_begin(&enc, sink, NULL, in[0]);
            tl_msg_put(&enc, in + 1, n - 1);
            tl_msg_end(&enc);
            put_record(out, out_n, NULL, 0);
        } else {
            uint32_t c = tl_crc32(in, n);
            uint8_t b[4];
            b[0] = (uint8_t)c;
            b[1] = (uint8_t)(c >> 8);
            b[2] = (uint8_t)(c >> 16);
            b[3] = (uint8_t)(c >> 24);
            put_record(b, 4, NULL, 0);
        }
    }
    fflush(stdout);
    return 0;
}
