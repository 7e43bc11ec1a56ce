/**
 * PURE. Shape checks for the JSON objects stackflow keeps in its state store (markers, part
 * records, manifests). State is data that a crash, a full disk or a hand can damage: every reader
 * parses through these, and an object that fails is treated as absent (its task runs again),
 * never trusted and never a permanent failure. Each check returns what is wrong, so the note that
 * reports the damage can say it.
 */
import type { Result } from '../../errors.js';
import { err, ok } from '../../errors.js';
import type { Manifest } from '../../model.js';
import type { MarkerBody, OutputRecord, PartRecord } from './markers.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSha = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isSize = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isCounts = (v: unknown): v is Record<string, number> =>
  isObj(v) && Object.values(v).every((x) => typeof x === 'number' && Number.isFinite(x));

/** Parses JSON text; a torn or foreign object is an error value, not an exception. */
export function parseJson(text: string): Result<unknown, string> {
  try {
    return ok(JSON.parse(text) as unknown);
  } catch {
    return err(text.length === 0 ? 'empty' : 'not valid JSON');
  }
}

function checkOutputs(v: unknown): string | undefined {
  if (!Array.isArray(v)) return 'outputs is not a list';
  for (const [i, o] of v.entries()) {
    if (!isObj(o)) return `outputs[${String(i)}] is not an object`;
    if (o.store !== 'work' && o.store !== 'bucket' && o.store !== 'state')
      return `outputs[${String(i)}].store is not work/bucket/state`;
    if (typeof o.key !== 'string' || o.key === '') return `outputs[${String(i)}].key is missing`;
    if (!isSize(o.size)) return `outputs[${String(i)}].size is not a size`;
    if (!isSha(o.sha256)) return `outputs[${String(i)}].sha256 is not a sha256`;
  }
  return undefined;
}

/**
 * A completion marker's body, checked against what its key says (`expect`): a body that belongs
 * to another task or fingerprint is as damaged as a torn one.
 */
export function checkMarkerBody(
  text: string,
  expect: { task?: string; fingerprint?: string },
): Result<MarkerBody, string> {
  const j = parseJson(text);
  if (!j.ok) return j;
  const v = j.value;
  if (!isObj(v)) return err('not an object');
  if (v.schema !== 1) return err('unknown schema');
  if (typeof v.task !== 'string') return err('no task');
  if (expect.task !== undefined && v.task !== expect.task) return err(`task is ${v.task}`);
  if (!isSha(v.fingerprint)) return err('no fingerprint');
  if (expect.fingerprint !== undefined && v.fingerprint !== expect.fingerprint)
    return err('fingerprint differs from its key');
  if (!isObj(v.fingerprintData)) return err('no fingerprint data');
  const bad = checkOutputs(v.outputs);
  if (bad !== undefined) return err(bad);
  if (!isCounts(v.counts)) return err('counts are not numbers');
  return ok(v as unknown as MarkerBody);
}

/** A pack part record, checked against the part number its key says. */
export function checkPartRecord(text: string, part: number): Result<PartRecord, string> {
  const j = parseJson(text);
  if (!j.ok) return j;
  const v = j.value;
  if (!isObj(v)) return err('not an object');
  if (v.part !== part) return err(`part is ${String(v.part)}, its key says ${String(part)}`);
  if (!isSize(v.total) || v.total <= part) return err('total is not a part count above part');
  const bad = checkOutputs(v.outputs);
  if (bad !== undefined) return err(bad);
  if ((v.outputs as OutputRecord[]).length === 0) return err('no outputs');
  if (!isCounts(v.counts)) return err('counts are not numbers');
  return ok(v as unknown as PartRecord);
}

/** A language's manifest, checked against the language it was read for. */
export function checkManifest(text: string, language: string): Result<Manifest, string> {
  const j = parseJson(text);
  if (!j.ok) return j;
  const v = j.value;
  if (!isObj(v)) return err('not an object');
  if (v.language !== language) return err('language differs');
  if (typeof v.revision !== 'string') return err('no revision');
  if (!Array.isArray(v.files)) return err('files is not a list');
  for (const [i, f] of v.files.entries()) {
    if (
      !isObj(f) ||
      typeof f.path !== 'string' ||
      typeof f.stem !== 'string' ||
      !isSize(f.size) ||
      !isSha(f.sha256)
    )
      return err(`files[${String(i)}] is not a file entry`);
  }
  return ok(v as unknown as Manifest);
}
