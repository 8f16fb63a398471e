/**
 * IDX files (the MNIST / Fashion-MNIST container), raw or gzipped, detected by magic bytes.
 *
 *   magic = 0x00 0x00 <type> <ndims>;  then ndims big-endian uint32 sizes;  then the data, row-major
 *
 * Only unsigned bytes (type 0x08) are read: images are 0x00000803 [n, rows, cols], labels
 * 0x00000801 [n]. Every failure is a {@link DataError} that names the file and says what to do.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

/** A problem with a data file or folder that the user can fix; its message is meant to be shown as-is. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** Magic number of IDX uint8 images, [n, rows, cols]. */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of IDX uint8 labels, [n]. */
export const IDX_LABELS_MAGIC = 0x00000801;

const IDX_UBYTE = 0x08;
const GZIP_MAGIC = [0x1f, 0x8b];

/** A decoded IDX uint8 tensor. */
export interface IdxTensor {
  /** The file it came from. */
  file: string;
  /** Sizes from the header, e.g. [n, rows, cols]. */
  dims: number[];
  /** Row-major data, product(dims) bytes. */
  data: Uint8Array;
}

/** Images from an IDX 0x00000803 file. */
export interface IdxImages {
  file: string;
  n: number;
  rows: number;
  cols: number;
  /** n*rows*cols bytes, row-major. */
  data: Uint8Array;
}

/** Labels from an IDX 0x00000801 file. */
export interface IdxLabels {
  file: string;
  n: number;
  data: Uint8Array;
}

const hex = (m: number) => '0x' + (m >>> 0).toString(16).padStart(8, '0');

function describeMagic(m: number): string {
  if (m === IDX_IMAGES_MAGIC) return `${hex(m)} (IDX images)`;
  if (m === IDX_LABELS_MAGIC) return `${hex(m)} (IDX labels)`;
  return hex(m);
}

function readBytes(file: string): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DataError(`data file not found: ${file}. Check the path, or run tools/fetch-fashion-mnist.sh to fetch the dataset.`);
    }
    throw new DataError(`cannot read data file ${file}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new DataError(`data file ${file} is not a regular file (a folder?). Point to the IDX file itself.`);
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new DataError(`cannot read data file ${file}: ${(e as Error).message}`);
  }
}

/** Gunzips when the bytes start with the gzip magic 1f 8b; returns raw bytes unchanged otherwise. */
function maybeGunzip(file: string, buf: Buffer): Buffer {
  if (buf.length < 2 || buf[0] !== GZIP_MAGIC[0] || buf[1] !== GZIP_MAGIC[1]) return buf;
  try {
    return zlib.gunzipSync(buf);
  } catch (e) {
    throw new DataError(
      `data file ${file} is gzip-compressed but cannot be decompressed (${(e as Error).message}); ` +
        'it is probably truncated or corrupt. Delete it and fetch it again (tools/fetch-fashion-mnist.sh).',
    );
  }
}

/**
 * Parses the bytes of an IDX uint8 file (already decompressed). `file` only names the source in errors.
 * @param expectMagic when given, the header must carry exactly this magic number.
 */
export function parseIdx(file: string, bytes: Uint8Array, expectMagic?: number): IdxTensor {
  const what = expectMagic === IDX_IMAGES_MAGIC ? 'IDX images' : expectMagic === IDX_LABELS_MAGIC ? 'IDX labels' : 'an IDX file';
  if (bytes.length < 4) {
    throw new DataError(`data file ${file} is too short (${bytes.length} bytes) to be ${what}; it is truncated or empty. Fetch it again.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const ndims = bytes[3];
  if (expectMagic !== undefined && magic !== expectMagic) {
    throw new DataError(
      `data file ${file} has magic number ${describeMagic(magic)}, expected ${hex(expectMagic)} (${what}). ` +
        'It is not the right file (images and labels swapped, or not an IDX file at all).',
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0 || ndims === 0) {
    throw new DataError(`data file ${file} has magic number ${hex(magic)}, which is not an IDX header. Check that it is an IDX file.`);
  }
  if (bytes[2] !== IDX_UBYTE) {
    throw new DataError(`data file ${file} holds IDX type 0x${bytes[2].toString(16).padStart(2, '0')}; only unsigned bytes (0x08) are supported.`);
  }
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) {
    throw new DataError(`data file ${file} is truncated inside its header (${bytes.length} of ${headerLen} bytes). Fetch it again.`);
  }
  const dims: number[] = [];
  let expected = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    expected *= d;
  }
  const have = bytes.length - headerLen;
  if (have !== expected) {
    const how = have < expected ? 'truncated' : 'longer than its header says';
    throw new DataError(
      `data file ${file} is ${how}: header [${dims.join(', ')}] needs ${expected} data bytes, found ${have}. ` +
        'Delete it and fetch it again (tools/fetch-fashion-mnist.sh).',
    );
  }
  return { file, dims, data: bytes.subarray(headerLen) };
}

/** Reads an IDX uint8 file, raw or gzipped (by magic bytes, not by name). */
export function readIdx(file: string, expectMagic?: number): IdxTensor {
  return parseIdx(file, maybeGunzip(file, readBytes(file)), expectMagic);
}

/** Reads IDX images (magic 0x00000803, uint8 [n, rows, cols]). */
export function readIdxImages(file: string): IdxImages {
  const t = readIdx(file, IDX_IMAGES_MAGIC);
  return { file, n: t.dims[0], rows: t.dims[1], cols: t.dims[2], data: t.data };
}

/** Reads IDX labels (magic 0x00000801, uint8 [n]). */
export function readIdxLabels(file: string): IdxLabels {
  const t = readIdx(file, IDX_LABELS_MAGIC);
  return { file, n: t.dims[0], data: t.data };
}

/** Encodes uint8 data as IDX bytes (header + data), gzipped (level 9) when `gzip` is set. */
export function encodeIdx(dims: number[], data: Uint8Array, gzip = false): Buffer {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (dims.length < 1 || dims.length > 255) throw new Error(`IDX needs 1..255 dims, got ${dims.length}`);
  if (data.length !== expected) throw new Error(`IDX dims [${dims.join(', ')}] need ${expected} bytes, got ${data.length}`);
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = IDX_UBYTE;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const raw = Buffer.concat([header, data]);
  return gzip ? zlib.gzipSync(raw, { level: 9 }) : raw;
}

/** Writes an IDX uint8 file; gzipped when the name ends in `.gz`. */
export function writeIdx(file: string, dims: number[], data: Uint8Array): void {
  fs.writeFileSync(file, encodeIdx(dims, data, file.endsWith('.gz')));
}
