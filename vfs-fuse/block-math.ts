/**
 * Block size of file data: 1 MiB fits one NATS message (max_payload is raised to 4 MiB for it), and
 * amortises the per-message cost of JetStream (≈ 3,000 puts/s) into ≈ 240 MB/s per stream of puts.
 */
export const BLOCK_SIZE = 1024 * 1024;

/** One piece of an I/O request that falls inside a single block. */
export interface BlockSlice {
  readonly index: number;
  /** Offset inside the block. */
  readonly start: number;
  readonly length: number;
  /** Offset inside the caller's buffer. */
  readonly bufferOffset: number;
}

/** Cuts `[offset, offset + length)` into per-block slices. Offsets are exact up to 2^53. */
export function blockSlices(offset: number, length: number, blockSize = BLOCK_SIZE): BlockSlice[] {
  const slices: BlockSlice[] = [];
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const index = Math.floor(pos / blockSize);
    const start = pos - index * blockSize;
    const len = Math.min(blockSize - start, end - pos);
    slices.push({ index, start, length: len, bufferOffset: pos - offset });
    pos += len;
  }
  return slices;
}

/** How many blocks a file of `size` bytes spans. */
export function blockCount(size: number, blockSize = BLOCK_SIZE): number {
  return Math.ceil(size / blockSize);
}
