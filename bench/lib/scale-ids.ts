/**
 * The blob id of row r of the rehearsal's parquet (scripts/make-big-parquet.ts --swh writes
 * `substr(sha256('blob' || r), 1, 40)`), so the bare loop GETs the same kind of ids pack does.
 */
import { createHash } from 'node:crypto';

export const blobIdOf = (row: number): string =>
  createHash('sha256')
    .update(`blob${String(row)}`)
    .digest('hex')
    .slice(0, 40);
