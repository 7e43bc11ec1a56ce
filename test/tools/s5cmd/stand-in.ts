/**
 * A STAND-IN FOR s5cmd (https://github.com/peak/s5cmd), for tests only. It is not s5cmd.
 *
 * Why it exists: pack's `fetcher: s5cmd` runs the s5cmd binary, and s5cmd cannot be installed on
 * the development machine or in CI (no network beyond npm and Debian, and Debian does not ship
 * it). So the tests put this directory first on PATH, and `s5cmd` here runs this file.
 *
 * What it covers: exactly the subset pack uses, following s5cmd v2's CLI and `--json` output:
 *   s5cmd [--json] [--numworkers N] [--retry-count N] [--no-sign-request] [--endpoint-url URL]
 *         [--log LEVEL] run [FILE]       (commands from FILE, or stdin)
 *   s5cmd version
 * and, inside run files, only `cp [--raw] s3://bucket/key <local path>` (a download; no
 * wildcards). Run files are read like s5cmd does: text after " #" dropped, blank and `#` lines
 * skipped, lines split like go-shellquote. Each download goes to `<dest><random digits>` in the
 * destination folder and is renamed on success, like s5cmd's CreateTemp + Rename, so a killed run
 * leaves the same kind of temp files. Output lines have s5cmd's shapes (log.InfoMessage on
 * stdout, log.ErrorMessage on stderr, Go's JSON escaping, aws-sdk-go's error text, e.g.
 * `NoSuchKey: The specified key does not exist. status code: 404, request id: …, host id: …`),
 * and the exit code is 1 when any command failed. Objects are fetched with @aws-sdk/client-s3,
 * path style when an endpoint is given, credentials from the SDK's default chain.
 *
 * Everything else (uploads, ls, sync, wildcards, most flags) is refused with an error line.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { shellSplit } from './shellquote.js';

interface Globals {
  json: boolean;
  workers: number;
  retryCount: number;
  unsigned: boolean;
  endpoint: string | undefined;
  /** info (default) prints successes; error prints only failures. */
  level: 'trace' | 'debug' | 'info' | 'error';
}

/** Go's json.Marshal escapes <, >, & and the JavaScript line terminators. */
function goJson(v: unknown): string {
  return JSON.stringify(v)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

/** command/error.go cleanupError: one line, tabs and double spaces folded. */
function cleanupError(s: string): string {
  return s.replaceAll('\n', ' ').replaceAll('\t', ' ').replaceAll('  ', ' ').trim();
}

function info(g: Globals, op: string, source: string, destination: string, size: number): void {
  if (g.level === 'error') return;
  const line = g.json
    ? goJson({
        operation: op,
        success: true,
        source,
        destination,
        // storage.Object: type is always there ("file" for a zero mode), size is omitempty.
        object: size === 0 ? { type: 'file' } : { type: 'file', size },
      })
    : `${op} ${source} ${destination}`;
  process.stdout.write(`${line}\n`);
}

let failures = 0;

/** Re-reads of a body that broke mid-stream (s3manager.Downloader's PartBodyMaxRetries). */
const BODY_RETRIES = 3;

function error(g: Globals, op: string, command: string, text: string): void {
  failures++;
  const e = cleanupError(text);
  const line = g.json
    ? goJson({ operation: op, command, error: e })
    : `ERROR ${JSON.stringify(command)}: ${e}`;
  process.stderr.write(`${line}\n`);
}

function usage(message: string): never {
  process.stderr.write(`Incorrect Usage: ${message}\n`);
  process.exit(1);
}

function parseGlobals(argv: string[]): { g: Globals; rest: string[] } {
  const g: Globals = {
    json: false,
    workers: 256,
    retryCount: 10,
    unsigned: false,
    endpoint: process.env.S3_ENDPOINT_URL,
    level: 'info',
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('-')) break;
    const [name, inline] = a.replace(/^--?/, '').split(/=(.*)/s, 2) as [string, string?];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) usage(`flag needs an argument: -${name}`);
      return v;
    };
    switch (name) {
      case 'json':
        g.json = true;
        break;
      case 'no-sign-request':
        g.unsigned = true;
        break;
      case 'numworkers':
        g.workers = Number(value());
        break;
      case 'retry-count':
      case 'r':
        g.retryCount = Number(value());
        break;
      case 'endpoint-url':
        g.endpoint = value();
        break;
      case 'log': {
        const l = value();
        if (l !== 'trace' && l !== 'debug' && l !== 'info' && l !== 'error')
          usage(`bad log level ${l}`);
        g.level = l;
        break;
      }
      default:
        usage(`flag provided but not defined: -${name}`);
    }
  }
  if (!Number.isInteger(g.workers) || g.workers < 1) usage('numworkers must be a positive integer');
  if (!Number.isInteger(g.retryCount) || g.retryCount < 0) usage('retry-count must be >= 0');
  return { g, rest: argv.slice(i) };
}

function makeClient(g: Globals): S3Client {
  return new S3Client({
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(g.endpoint === undefined ? {} : { endpoint: g.endpoint, forcePathStyle: true }),
    maxAttempts: g.retryCount + 1,
    ...(g.unsigned
      ? {
          signer: { sign: (request) => Promise.resolve(request) },
          credentials: { accessKeyId: '', secretAccessKey: '' },
        }
      : {}),
  });
}

/** aws-sdk-go v1's awserr text for an S3 error (before cleanupError folds it into one line). */
function awsErrorText(e: unknown): string {
  const x = e as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string };
  };
  const status = x.$metadata?.httpStatusCode;
  if (status === undefined) {
    // No HTTP response: a network error, as aws-sdk-go words it.
    return `RequestError: send request failed\ncaused by: ${x.message ?? String(e)}`;
  }
  const code = x.name ?? 'UnknownError';
  // The v3 SDK puts "UnknownError" / the code in `message` when the body had none.
  const message =
    x.message === undefined || x.message === code || x.message === 'UnknownError' ? '' : x.message;
  const extra = `status code: ${status}, request id: ${x.$metadata?.requestId ?? ''}, host id: ${x.$metadata?.extendedRequestId ?? ''}`;
  return `${code}: ${message}\n\t${extra}`;
}

async function copy(g: Globals, client: S3Client, fields: string[], line: string): Promise<void> {
  const args = fields.slice(1);
  let raw = false;
  while (args[0]?.startsWith('-') === true) {
    const f = args.shift() ?? '';
    if (f === '--raw' || f === '-raw' || f === '--raw=true') raw = true;
    else {
      error(g, 'cp', line, `flag provided but not defined: ${f} (not supported by the stand-in)`);
      return;
    }
  }
  const [src, dstArg] = args;
  if (args.length !== 2 || src === undefined || dstArg === undefined) {
    error(g, 'cp', line, 'expected source and destination arguments');
    return;
  }
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(src);
  if (m?.[1] === undefined || m[2] === undefined || dstArg.includes('://')) {
    error(g, 'cp', line, 'the s5cmd stand-in only downloads (cp s3://bucket/key <local path>)');
    return;
  }
  const [, bucket, key] = m;
  if (!raw && /[*?]/.test(src + dstArg)) {
    error(g, 'cp', line, 'the s5cmd stand-in does not expand wildcards (use --raw)');
    return;
  }
  let dst = dstArg;
  const isDir = await stat(dst).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (dst.endsWith('/') || isDir) dst = join(dst, posix.basename(key));
  const command = `cp ${src} ${dst}`;
  await mkdir(dirname(dst), { recursive: true });
  // os.CreateTemp(dir, base): the base name followed by random digits, created exclusively.
  let tmp = '';
  for (;;) {
    tmp = `${dst}${Math.floor(Math.random() * 2 ** 32)}`;
    try {
      await (await open(tmp, 'wx')).close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  try {
    // The SDK retries a request until its headers arrive; a body that breaks later is read
    // again, as aws-sdk-go's s3manager.Downloader does (PartBodyMaxRetries, default 3).
    for (let attempt = 0; ; attempt++) {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      try {
        await pipeline(res.Body as Readable, createWriteStream(tmp));
        break;
      } catch (e) {
        if (attempt >= BODY_RETRIES) throw e;
      }
    }
    const size = (await stat(tmp)).size;
    await rename(tmp, dst);
    info(g, 'cp', src, dst, size);
  } catch (e) {
    await rm(tmp, { force: true });
    error(g, 'cp', command, awsErrorText(e));
  }
}

async function run(g: Globals, args: string[]): Promise<void> {
  if (args.length > 1) {
    error(g, 'run', `run ${args.join(' ')}`, 'expected only 1 file');
    return;
  }
  const input = args[0] === undefined ? process.stdin : createReadStream(args[0]);
  const client = makeClient(g);
  const running = new Set<Promise<void>>();
  let lineno = -1;
  for await (const full of createInterface({ input, crlfDelay: Infinity })) {
    lineno++;
    const line = (full.split(' #')[0] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    let fields: string[];
    try {
      fields = shellSplit(line);
    } catch (e) {
      error(g, 'run', `run ${args[0] ?? ''}`.trim(), (e as Error).message);
      break;
    }
    if (fields[0] !== 'cp') {
      error(
        g,
        'run',
        `run ${args[0] ?? ''}`.trim(),
        `"${fields[0] ?? ''}" command (line: ${lineno}) is not supported by the s5cmd stand-in`,
      );
      continue;
    }
    const p = copy(g, client, fields, line).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= g.workers) await Promise.race(running);
  }
  await Promise.all(running);
}

async function main(): Promise<void> {
  const { g, rest } = parseGlobals(process.argv.slice(2));
  const [sub, ...args] = rest;
  switch (sub) {
    case 'version':
      process.stdout.write('v2.2.2-stand-in\n');
      return;
    case 'run':
      await run(g, args);
      break;
    case undefined:
      usage('no command given');
      break;
    default:
      usage(`the s5cmd stand-in does not implement "${sub}"`);
  }
  // Let stdout/stderr drain before the exit code.
  if (!process.stdout.write('')) await once(process.stdout, 'drain');
  process.exitCode = failures > 0 ? 1 : 0;
}

await main();
