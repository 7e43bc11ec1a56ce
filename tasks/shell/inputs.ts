/** EFFECTS. The local files a shell stage reads: its `inputs` globs, matched under the pipeline's directory. */
import fg from 'fast-glob';

/** The strings of a list param (anything else left out). */
export const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/** Local files matched by a shell stage's `inputs` globs, sorted. */
export async function shellInputFiles(dir: string, globs: readonly string[]): Promise<string[]> {
  if (globs.length === 0) return [];
  const found = await fg([...globs], { cwd: dir, absolute: true, onlyFiles: true, dot: false });
  return found.sort();
}
