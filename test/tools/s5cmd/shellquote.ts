/**
 * Part of the s5cmd stand-in (see stand-in.ts): how s5cmd splits a run-file line. s5cmd uses
 * github.com/kballard/go-shellquote's Split, a POSIX-like word splitter without `$'…'`,
 * variables or globbing. Kept in its own module so unit tests can check run files against it.
 */

/** go-shellquote's Split: whitespace-separated words, '…', "…" and backslash escapes. */
export function shellSplit(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('Unterminated single-quoted string');
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let w = word ?? '';
      for (i++; ; i++) {
        if (i >= line.length) throw new Error('Unterminated double-quoted string');
        const d = line[i] ?? '';
        if (d === '"') break;
        if (d === '\\' && /[$`"\\\n]/.test(line[i + 1] ?? '')) w += line[++i] ?? '';
        else w += d;
      }
      word = w;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('Unterminated backslash-escape');
      word = (word ?? '') + (line[++i] ?? '');
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
