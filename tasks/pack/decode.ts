/**
 * Turns a Software Heritage blob (gzip bytes) into text, using the row's `src_encoding`.
 *
 * Owns: gunzip with a size cap, the table from the dataset's encoding spellings to a decoder, and
 * the rule for what counts as undecodable. Never throws on data: every problem is a `DecodeError`.
 *
 * Reference semantics are CPython's codecs: every spelling in the dataset is a Python codec name
 * or alias (`UHC`, `MACCENTRALEUROPE`, `TIS-620` ...) and `length_bytes` is the UTF-8 length after
 * that conversion. Node 20's `TextDecoder` is ICU-backed and disagrees with those codecs for some
 * labels, measured byte by byte against Python 3 (see test/unit/decode.test.ts), so those labels go
 * through iconv-lite instead:
 * - `windows-1252` decodes as Latin-1 (0x80 -> U+0080, not the euro sign);
 * - the other `windows-125x`/`windows-874` decoders map unassigned bytes to C1 controls instead of
 *   rejecting them;
 * - `iso-8859-9` / `iso-8859-11` / `tis-620` are aliased to windows-1254 / windows-874 (0x80-0x9F
 *   change meaning, and 0xDB-0xDE come out as private-use characters);
 * - `ibm866` swaps 0x1A, 0x1C and 0x7F; `euc-kr` is strict EUC-KR without the UHC (cp949) extension
 *   and lets stray bytes through; `iso-8859-16`, `IBM852`, `IBM855`, `MACCENTRALEUROPE` are missing.
 * Single-byte tables therefore equal CPython's byte for byte (hash-tested). BIG5, EUC-JP, GB18030
 * and SHIFT_JIS go through TextDecoder, whose tables are the Microsoft/WHATWG supersets of
 * CPython's strict ones: NEC/IBM extensions decode instead of failing (HKSCS bytes in BIG5 come out
 * as private-use code points under ICU), and a few characters take the Microsoft code point
 * (Shift_JIS 0x8160 is U+FF5E, not U+301C; 0x8191 is U+FFE0, not U+00A2). iconv-lite maps those
 * the same way.
 *
 * Undecodable means: an invalid multi-byte sequence, a truncated sequence at the end, or a byte the
 * code page leaves unassigned (CPython raises on those too). Leading BOMs: a UTF-8 BOM is stripped;
 * `UTF-16` honours a BOM (FF FE little endian, FE FF big endian, stripped) and is big endian
 * without one. Other encodings have no BOM.
 */
import { TextDecoder } from 'node:util';
import { gunzipSync } from 'node:zlib';
import iconv from 'iconv-lite';
// The line workers load this module: lib/task-api.ts would load the kinds' registry into every
// worker thread (~140 ms and ~13 MB each), where lib/errors.ts is all that is needed.
// eslint-disable-next-line no-restricted-imports -- the task boundary, kept small for workers
import { err, ok, unreachable, type Result } from '../../lib/errors.js';

/** Why a blob could not be turned into text. */
export interface DecodeError {
  /**
   * `corrupt-gzip`: not gzip, truncated, bad checksum, trailing garbage, or larger than the cap
   * (detail `too large`); `undecodable`: the bytes are not valid in the encoding;
   * `unknown-encoding`: the `src_encoding` spelling is not one we know.
   */
  reason: 'corrupt-gzip' | 'undecodable' | 'unknown-encoding';
  /** A short human explanation, e.g. the byte offset of the first invalid byte. */
  detail: string;
}

/** Default cap on the decompressed size of one blob (a gzip-bomb guard). */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024;

/** Above this size an undecodable input is reported without searching for the byte offset. */
const MAX_OFFSET_SEARCH_BYTES = 16 * 1024 * 1024;

type IconvEncoding = Parameters<typeof iconv.decode>[1];

/** How one spelling is decoded. */
type Codec =
  | { via: 'textdecoder'; label: string }
  /** `UTF-16`: BOM sniffing on top of the two TextDecoder variants. */
  | { via: 'utf16' }
  | {
      via: 'iconv';
      label: IconvEncoding;
      /** Single-byte code page: unassigned bytes are found with a 256-entry table. */
      singleByte: boolean;
      /** Bytes unassigned in the reference codec that iconv-lite's table does assign. */
      alsoUnassigned?: readonly number[];
    };

const td = (label: string): Codec => ({ via: 'textdecoder', label });
const sb = (label: IconvEncoding, alsoUnassigned?: readonly number[]): Codec => ({
  via: 'iconv',
  label,
  singleByte: true,
  ...(alsoUnassigned ? { alsoUnassigned } : {}),
});

/** Keys are normalised spellings (see `normalise`). */
const CODECS = new Map<string, Codec>([
  ['utf8', td('utf-8')],
  // Not seen in the dataset; ASCII is a subset of UTF-8 and invalid UTF-8 is still rejected.
  ['ascii', td('utf-8')],
  ['usascii', td('utf-8')],
  ['utf16', { via: 'utf16' }],
  ['utf16be', td('utf-16be')],
  ['utf16le', td('utf-16le')],
  // True ISO-8859-1 (0x80-0x9F are C1 controls): not TextDecoder's windows-1252 alias.
  ['iso88591', sb('latin1')],
  ['latin1', sb('latin1')],
  ['iso88599', sb('iso88599')],
  ['iso885911', sb('iso885911')],
  ['iso885916', sb('iso885916')],
  // CPython's tis_620 is ISO-8859-11 without 0xA0 (no-break space).
  ['tis620', sb('iso885911', [0xa0])],
  ['windows874', sb('cp874')],
  ['cp874', sb('cp874')],
  ['ibm852', sb('cp852')],
  ['cp852', sb('cp852')],
  ['ibm855', sb('cp855')],
  ['cp855', sb('cp855')],
  ['ibm866', sb('cp866')],
  ['cp866', sb('cp866')],
  ['maccentraleurope', sb('maccenteuro')],
  ['maclatin2', sb('maccenteuro')],
  ['koi8r', td('koi8-r')],
  ['koi8u', td('koi8-u')],
  ['macintosh', td('macintosh')],
  ['mac', td('macintosh')],
  ['macroman', td('macintosh')],
  ['maccyrillic', td('x-mac-cyrillic')],
  ['xmaccyrillic', td('x-mac-cyrillic')],
  ['big5', td('big5')],
  ['eucjp', td('euc-jp')],
  ['gb18030', td('gb18030')],
  ['gbk', td('gb18030')],
  ['gb2312', td('gb18030')],
  ['shiftjis', td('shift_jis')],
  ['sjis', td('shift_jis')],
  ['cp932', td('shift_jis')],
  ['uhc', { via: 'iconv', label: 'cp949', singleByte: false }],
  ['cp949', { via: 'iconv', label: 'cp949', singleByte: false }],
  ['euckr', { via: 'iconv', label: 'cp949', singleByte: false }],
]);
for (const n of [2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15])
  CODECS.set(`iso8859${n}`, td(`iso-8859-${n}`));
for (let n = 1250; n <= 1258; n++) {
  // iconv-lite assigns 0xCA in cp1255 (U+05BA, a late Microsoft addition); CPython does not.
  const codec = sb(`cp${n}` as IconvEncoding, n === 1255 ? [0xca] : undefined);
  CODECS.set(`windows${n}`, codec);
  CODECS.set(`cp${n}`, codec);
}

/** Case-insensitive; `-`, `_`, `.`, spaces are ignored (`ISO8859-1` = `iso_8859_1` = `ISO-8859-1`). */
function normalise(srcEncoding: string): string {
  return srcEncoding.toLowerCase().replace(/[-_.\s]/g, '');
}

/** Maps a dataset spelling to a decoder; undefined if unknown. Exported for tests. */
export function resolveEncoding(
  srcEncoding: string,
): { label: string; via: 'textdecoder' | 'iconv' } | undefined {
  const codec = CODECS.get(normalise(srcEncoding));
  if (codec === undefined) return undefined;
  // UTF-16 without a BOM is big endian; the BOM, when present, picks the decoder per blob.
  if (codec.via === 'utf16') return { label: 'utf-16be', via: 'textdecoder' };
  return { label: codec.label, via: codec.via };
}

/** gunzip then decode bytes in the dataset's `src_encoding` spelling; never throws on data. */
export function decodeBlob(
  gz: Uint8Array,
  srcEncoding: string,
  opts: { maxBytes?: number } = {},
): Result<string, DecodeError> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BLOB_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new Error(
      `Internal error: decodeBlob maxBytes must be a positive integer, got ${maxBytes}`,
    );
  }
  // The encoding is checked first: it is cheap and spares a gunzip whose result we cannot use.
  const codec = CODECS.get(normalise(srcEncoding));
  if (codec === undefined) return unknownEncoding(srcEncoding);
  const raw = gunzip(gz, maxBytes);
  if (!raw.ok) return raw;
  return decodeWith(codec, raw.value);
}

/** Decodes bytes in the dataset's `src_encoding` spelling; never throws. */
export function decodeText(bytes: Uint8Array, srcEncoding: string): Result<string, DecodeError> {
  const codec = CODECS.get(normalise(srcEncoding));
  if (codec === undefined) return unknownEncoding(srcEncoding);
  return decodeWith(codec, bytes);
}

function unknownEncoding(srcEncoding: string): Result<never, DecodeError> {
  return err({
    reason: 'unknown-encoding',
    detail: `unknown encoding ${JSON.stringify(srcEncoding)}`,
  });
}

/**
 * zlib's gunzip reads concatenated members. Bytes after the last member are an error unless they
 * are zero padding (zlib's rule). An empty input is not gzip.
 */
function gunzip(gz: Uint8Array, maxBytes: number): Result<Buffer, DecodeError> {
  try {
    return ok(gunzipSync(gz, { maxOutputLength: maxBytes }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const detail =
      code === 'ERR_BUFFER_TOO_LARGE' ? 'too large' : e instanceof Error ? e.message : String(e);
    return err({ reason: 'corrupt-gzip', detail });
  }
}

function decodeWith(codec: Codec, bytes: Uint8Array): Result<string, DecodeError> {
  if (bytes.length === 0) return ok('');
  switch (codec.via) {
    case 'textdecoder':
      return viaTextDecoder(codec.label, bytes);
    case 'utf16': {
      const le = bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe;
      return viaTextDecoder(le ? 'utf-16le' : 'utf-16be', bytes);
    }
    case 'iconv':
      return codec.singleByte
        ? viaSingleByte(codec.label, codec.alsoUnassigned, bytes)
        : viaIconvMultiByte(codec.label, bytes);
    default:
      return unreachable(codec);
  }
}

const textDecoders = new Map<string, TextDecoder>();

/** Fatal decoders (invalid bytes throw) are stateless between whole-buffer calls, so one per label. */
function fatalDecoder(label: string): TextDecoder {
  let d = textDecoders.get(label);
  if (d === undefined) {
    // ignoreBOM: false strips a leading UTF-8 / UTF-16 BOM matching the decoder.
    d = new TextDecoder(label, { fatal: true, ignoreBOM: false });
    textDecoders.set(label, d);
  }
  return d;
}

function viaTextDecoder(label: string, bytes: Uint8Array): Result<string, DecodeError> {
  try {
    return ok(fatalDecoder(label).decode(bytes));
  } catch {
    const at = firstFailingPrefix(bytes.length, (n) => {
      try {
        new TextDecoder(label, { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
        return false;
      } catch {
        return true;
      }
    });
    return undecodable(label, bytes, at);
  }
}

const unassignedTables = new Map<string, Uint8Array>();

/** 1 for each byte value the code page leaves unassigned (iconv-lite decodes those to U+FFFD). */
function unassignedTable(label: IconvEncoding, also: readonly number[] | undefined): Uint8Array {
  const key = `${label}/${(also ?? []).join(',')}`;
  let table = unassignedTables.get(key);
  if (table === undefined) {
    table = new Uint8Array(256);
    const all = Buffer.alloc(256);
    for (let b = 0; b < 256; b++) all[b] = b;
    const chars = iconv.decode(all, label);
    if (chars.length !== 256)
      throw new Error(`Internal error: ${label} is not a single-byte codec`);
    for (let b = 0; b < 256; b++) if (chars.charCodeAt(b) === 0xfffd) table[b] = 1;
    for (const b of also ?? []) table[b] = 1;
    unassignedTables.set(key, table);
  }
  return table;
}

function viaSingleByte(
  label: IconvEncoding,
  also: readonly number[] | undefined,
  bytes: Uint8Array,
): Result<string, DecodeError> {
  const table = unassignedTable(label, also);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (table[b] === 1) {
      return err({
        reason: 'undecodable',
        detail: `byte 0x${hex(b)} at offset ${i} is unassigned in ${label}`,
      });
    }
  }
  return ok(iconv.decode(bytes, label));
}

/** cp949 cannot encode U+FFFD, so any U+FFFD in iconv-lite's output marks an invalid sequence. */
function viaIconvMultiByte(label: IconvEncoding, bytes: Uint8Array): Result<string, DecodeError> {
  const text = iconv.decode(bytes, label);
  if (!text.includes('\ufffd')) return ok(text);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = firstFailingPrefix(bytes.length, (n) =>
    // A streaming decoder holds back an incomplete trailing sequence instead of replacing it.
    iconv.getDecoder(label).write(buf.subarray(0, n)).includes('\ufffd'),
  );
  return undecodable(label, bytes, at);
}

/**
 * The smallest n such that `fails(n)`, for a monotone predicate over prefix lengths 1..len, or
 * undefined when no proper prefix fails (the error is a truncated sequence at the end) or the input
 * is too large to search.
 */
function firstFailingPrefix(len: number, fails: (n: number) => boolean): number | undefined {
  if (len > MAX_OFFSET_SEARCH_BYTES || !fails(len)) return undefined;
  let lo = 1;
  let hi = len;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (fails(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function undecodable(
  label: string,
  bytes: Uint8Array,
  failingPrefix: number | undefined,
): Result<never, DecodeError> {
  if (failingPrefix === undefined) {
    const detail =
      bytes.length > MAX_OFFSET_SEARCH_BYTES
        ? `invalid ${label} bytes (offset not searched in ${bytes.length} bytes)`
        : `truncated ${label} sequence at end of input (${bytes.length} bytes)`;
    return err({ reason: 'undecodable', detail });
  }
  // The decoder noticed the problem on reading this byte; the bad sequence may start a little earlier.
  const at = failingPrefix - 1;
  return err({
    reason: 'undecodable',
    detail: `invalid ${label} sequence at byte offset ${at} (0x${hex(bytes[at] ?? 0)})`,
  });
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
