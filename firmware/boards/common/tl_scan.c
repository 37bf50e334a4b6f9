/* treadlab board ports: multiplexer and row/column scanning, independent of the hardware (tl_scan.h). */
#include "tl_scan.h"

void tl_mux16_capture(const tl_scan_io *io, uint16_t *out, uint8_t n)
{
    for (uint8_t ch = 0; ch < n && ch < 16; ch++) {
        io->select(io->ctx, ch);
        io->wait_us(io->ctx, TL_MUX16_SETTLE_US);
        for (uint8_t k = 0; k < TL_MUX16_DUMMY_READS; k++)
            (void)io->adc_read(io->ctx, 0);
        out[ch] = io->adc_read(io->ctx, 0);
    }
}

void tl_matscan_init(const tl_scan_io *io, uint16_t rows)
{
    for (uint16_t r = 0; r < rows; r++)
        io->row(io->ctx, r, 0);
}

void tl_matscan_scan(const tl_scan_io *io, tl_dev *dev, uint16_t rows, uint16_t cols)
{
    for (uint16_t r = 0; r < rows; r++) {
        io->row(io->ctx, r, 1);
        for (uint16_t c = 0; c < cols; c++) {
            io->select(io->ctx, (uint8_t)(c & 15u));
            io->wait_us(io->ctx, TL_MAT_SETTLE_US);
            tl_dev_value(dev, io->adc_read(io->ctx, (uint8_t)(c >> 4)));
        }
        io->row(io->ctx, r, 0);
    }
}
