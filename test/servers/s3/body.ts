/**
 * Request bodies of object uploads, as AWS reads them: `aws-chunked` framing removed, declared
 * lengths and checksums verified. s3rver stores the raw HTTP body, so since SDK 3.729 (default
 * checksums frame every stream body) it silently stored the framing as the object's bytes.
 *
 * aws-chunked (what the SDK sends for a stream body, over HTTP/1.1 `Transfer-Encoding: chunked`):
 *
 *     <hex size>[;chunk-signature=<sig>]\r\n <bytes> \r\n   (repeated)
 *     0[;chunk-signature=<sig>]\r\n
 *     x-amz-checksum-crc32:<base64>\r\n                     (trailers, optional)
 *     \r\n
 *
 * The SDK omits the final blank line when it sends no trailer, so end of input right after the
 * zero-size chunk is accepted.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { header } from './http.js';
import { s3Error } from './s3rver.js';

const MAX_LINE = 4096;

/** Removes aws-chunked framing; collects trailers into `trailers` (lower-cased names). */
export class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>();
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private line = '';
  private remaining = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.consume(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    const complete = this.state === 'done' || (this.state === 'trailer' && this.line === '');
    done(complete ? null : incomplete('the aws-chunked body ended inside a chunk'));
  }

  private consume(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - i);
          this.push(chunk.subarray(i, i + n));
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = 'data-end';
          break;
        }
        case 'done':
          throw malformed('bytes after the end of the aws-chunked body');
        default: {
          // size, data-end and trailer states read CRLF-terminated lines.
          const nl = chunk.indexOf(0x0a, i);
          const end = nl === -1 ? chunk.length : nl + 1;
          this.line += chunk.subarray(i, end).toString('latin1');
          i = end;
          if (this.line.length > MAX_LINE) throw malformed('an aws-chunked line is too long');
          if (nl !== -1) {
            const line = this.line.endsWith('\r\n') ? this.line.slice(0, -2) : null;
            this.line = '';
            if (line === null) throw malformed('an aws-chunked line does not end in CRLF');
            this.onLine(line);
          }
        }
      }
    }
  }

  private onLine(line: string): void {
    switch (this.state) {
      case 'data-end':
        if (line !== '') throw malformed('a chunk is longer than its declared size');
        this.state = 'size';
        return;
      case 'size': {
        const hex = line.split(';', 1)[0] ?? '';
        if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw malformed(`bad chunk size line ${line}`);
        this.remaining = parseInt(hex, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
        return;
      }
      case 'trailer': {
        if (line === '') {
          this.state = 'done';
          return;
        }
        const colon = line.indexOf(':');
        if (colon <= 0) throw malformed(`bad trailer line ${line}`);
        this.trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        return;
      }
      default:
        throw new Error(`Internal error: a line in state ${this.state}`);
    }
  }
}

function malformed(detail: string) {
  return s3Error('InvalidRequest', `Malformed aws-chunked body: ${detail}`);
}

function incomplete(detail: string) {
  return s3Error('IncompleteBody', `You did not provide the number of bytes specified: ${detail}`);
}

/** A running checksum of one of the algorithms the harness can verify. */
interface Digest {
  update(b: Buffer): void;
  base64(): string;
}

function crc32Digest(): Digest {
  let crc = 0;
  return {
    update: (b) => (crc = crc32(b, crc)),
    base64: () => u32(crc),
  };
}

/** CRC-32C (Castagnoli), reflected, as S3's x-amz-checksum-crc32c. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32cDigest(): Digest {
  let crc = 0xffffffff;
  return {
    update: (b) => {
      for (const byte of b) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
    },
    base64: () => u32((crc ^ 0xffffffff) >>> 0),
  };
}

function hashDigest(h: Hash): Digest {
  return { update: (b) => h.update(b), base64: () => h.digest('base64') };
}

function u32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

/** Digest factories by checksum header name. CRC64NVME is accepted unverified (no Node builtin). */
const DIGESTS: Record<string, (() => Digest) | undefined> = {
  'x-amz-checksum-crc32': crc32Digest,
  'x-amz-checksum-crc32c': crc32cDigest,
  'x-amz-checksum-sha1': () => hashDigest(createHash('sha1')),
  'x-amz-checksum-sha256': () => hashDigest(createHash('sha256')),
};

export interface BodyPlan {
  /** The body is aws-chunked and must be decoded. */
  chunked: boolean;
  /** Bytes the stored object must have. */
  length: number;
  /** `Content-Encoding` to store: the request's, without the `aws-chunked` token. */
  contentEncoding: string | undefined;
}

/**
 * Reads how an upload body is framed, or throws what AWS answers: 411 MissingContentLength when
 * the length is unknown (AWS does not take plain HTTP-chunked uploads), 400 for a bad length.
 */
export function planBody(headers: IncomingHttpHeaders): BodyPlan {
  const encodings = (headers['content-encoding'] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const chunked = encodings.includes('aws-chunked');
  const rest = encodings.filter((e) => e !== 'aws-chunked');
  const contentEncoding = rest.length > 0 ? rest.join(',') : undefined;
  const raw = chunked ? headers['x-amz-decoded-content-length'] : headers['content-length'];
  if (typeof raw !== 'string') {
    throw s3Error(
      'MissingContentLength',
      'You must provide the Content-Length HTTP header.',
      {},
      411,
    );
  }
  if (!/^\d+$/.test(raw)) {
    throw s3Error('InvalidArgument', `Bad content length ${raw}`);
  }
  return { chunked, length: Number(raw), contentEncoding };
}

/**
 * Passes decoded bytes through, counting them and computing the checksums the request declared
 * (in a header, or as a trailer named by `x-amz-trailer`), plus Content-MD5. At the end it checks
 * the length and every checksum, failing the pipeline (so nothing is stored) on a mismatch.
 */
export class BodyVerifier extends Transform {
  private received = 0;
  private readonly digests = new Map<string, Digest>();
  private readonly md5?: Hash;
  /** Checksums that were verified (header name -> base64), to echo in the response as AWS does. */
  readonly verified = new Map<string, string>();

  constructor(
    private readonly headers: IncomingHttpHeaders,
    private readonly expectedLength: number,
    private readonly trailers: () => Map<string, string>,
  ) {
    super();
    const trailerName = header(headers, 'x-amz-trailer')?.toLowerCase();
    for (const name of Object.keys(DIGESTS)) {
      const make = DIGESTS[name];
      if (make !== undefined && (name in headers || name === trailerName)) {
        this.digests.set(name, make());
      }
    }
    if (typeof headers['content-md5'] === 'string') this.md5 = createHash('md5');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.expectedLength) {
      done(incomplete(`more than the declared ${String(this.expectedLength)} bytes`));
      return;
    }
    for (const d of this.digests.values()) d.update(chunk);
    this.md5?.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.received !== this.expectedLength) {
      done(incomplete(`got ${String(this.received)} of ${String(this.expectedLength)} bytes`));
      return;
    }
    const trailers = this.trailers();
    for (const [name, digest] of this.digests) {
      const header = this.headers[name];
      const claimed = typeof header === 'string' ? header : trailers.get(name);
      const actual = digest.base64();
      if (claimed === undefined) {
        done(s3Error('InvalidRequest', `The trailer ${name} was announced but not sent.`));
        return;
      }
      if (claimed !== actual) {
        const alg = name.slice('x-amz-checksum-'.length).toUpperCase();
        done(
          s3Error('BadDigest', `The ${alg} you specified did not match the calculated checksum.`),
        );
        return;
      }
      this.verified.set(name, actual);
    }
    if (this.md5 !== undefined && this.md5.digest('base64') !== this.headers['content-md5']) {
      done(s3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.'));
      return;
    }
    done();
  }
}
