/** EFFECTS. The local files a shell stage reads: its `inputs` globs, matched under the pipeline's directory. */
import fg from 'fast-glob';

/** Local files matched by a shell stage's `inputs` globs, sorted. */
export async function shellInputFiles(dir: string, globs: readonly string[]): Promise<string[]> {
  if (globs.length === 0) return [];
  const found = await fg([...globs], { cwd: dir, absolute: true, onlyFiles: true, dot: false });
  return found.sort();
}
