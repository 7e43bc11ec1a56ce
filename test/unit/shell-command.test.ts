import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderShellTemplate, shellScript } from '../../lib/shell-command.js';

const HOSTILE = [
  'x;cd $HOME;id>pwned;#',
  '$(touch pwned)',
  '`touch pwned`',
  "Ren'Py",
  'a"b\\c',
  "it's $'x' \"y\"",
  'two\nlines; touch pwned',
  ' -n ',
  '*',
  'C++',
  'Graphviz_(DOT)',
  'Visual Basic .NET',
  'Ünïcödé 日本語',
];

const dir = mkdtempSync(join(tmpdir(), 'stackflow-shell-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the rendered command with bash in an empty dir and returns its stdout. */
function run(template: string, language: string, inputs: string[] = [], outputs: string[] = []) {
  const s = shellScript(template, { vars: { language, stage: 'st' }, inputs, outputs });
  const out = execFileSync('bash', ['-eo', 'pipefail', '-c', s.script, ...s.args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...s.env },
    encoding: 'utf8',
  });
  expect(readdirSync(dir)).toEqual([]); // nothing was created: no value ran as code
  return out;
}

describe('shell command templates: values are never code', () => {
  for (const value of HOSTILE) {
    it(`passes ${JSON.stringify(value)} literally in every quoting context`, () => {
      const v = JSON.stringify(value);
      expect(run(`printf '%s|' {language}`, value), 'unquoted').toBe(`${value}|`);
      expect(run(`printf '%s|' "{language}"`, value), 'double quotes').toBe(`${value}|`);
      expect(run(`printf '%s|' '{language}'`, value), 'single quotes').toBe(`${value}|`);
      expect(run(`printf '%s|' "<{language}>"`, value), 'inside a word').toBe(`<${value}>|`);
      expect(run(`printf '%s|' $'[{language}]'`, value), 'ANSI-C quotes').toBe(`[${value}]|`);
      expect(run(`printf '%s|' "$(printf '%s' {language})"`, value), '$( ) in "…"').toBe(
        `${value}|`,
      );
      expect(run(`x=$(printf '%s' "{language}"); printf '%s|' "$x"`, value), '$( )').toBe(
        `${value}|`,
      );
      expect(run(`printf '%s|' \`printf '%s' "{language}"\``, value).length, v).toBeGreaterThan(0);
      expect(run(`cat <<EOF\n[{language}]\nEOF`, value), 'heredoc').toBe(`[${value}]\n`);
      expect(
        run(`echo hi # a comment with {language} and don't\nprintf '%s|' {language}`, value),
      ).toBe(`hi\n${value}|`);
    });
  }

  it('passes lists as one word per path, or joined inside quotes', () => {
    const ins = ['/a b/x;id', "/c/Ren'Py", '/d/$(touch pwned)'];
    expect(run(`printf '%s|' {inputs}`, 'C', ins)).toBe(ins.map((p) => `${p}|`).join(''));
    expect(run(`printf '%s|' "{inputs}"`, 'C', ins)).toBe(`${ins.join(' ')}|`);
    expect(run(`printf '%s|' {outputs}`, 'C', ins, ['/o 1', '/o2'])).toBe('/o 1|/o2|');
    expect(run(`set -- {inputs}; echo $#; printf '%s|' {outputs}`, 'C', [], ['/o'])).toBe('0\n/o|');
    expect(run('echo $# "$@"', 'C', ins, ['/o'])).toBe('0\n');
  });

  it('keeps everything but placeholders byte for byte', () => {
    const t = "awk '{print $1}' ${HOME} {{x}} \"$(date)\" <<'EOF'\n{language}\nEOF\necho {stage}";
    expect(renderShellTemplate(t)).toBe(
      'awk \'{print $1}\' ${HOME} {{x}} "$(date)" <<\'EOF\'\n${STACKFLOW_LANGUAGE}\nEOF\necho "${STACKFLOW_STAGE}"',
    );
  });

  it('sets only the scalar values the task has', () => {
    const s = shellScript('true', {
      vars: { stage: 's', language: 'C++' },
      inputs: [],
      outputs: [],
    });
    expect(s.env).toEqual({ STACKFLOW_STAGE: 's', STACKFLOW_LANGUAGE: 'C++' });
    expect(s.args).toEqual(['stackflow']);
  });
});
