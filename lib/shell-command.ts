/**
 * PURE. A shell stage's `command` template → a bash script in which no value is ever code.
 *
 * Values (a language folder such as `Ren'Py` or `x;cd $HOME;id>pwned;#`, a file stem, input and
 * output paths) never enter the script's text. Each placeholder becomes a reference to a variable
 * that holds its value: `{language}` → `"${STACKFLOW_LANGUAGE}"` (set in the environment),
 * `{inputs}` → `"${STACKFLOW_INPUTS[@]}"` (a bash array filled from the script's arguments). bash
 * never parses the result of an expansion as code, so whatever the value holds — quotes, `;`,
 * `$( )`, backticks, newlines — the command sees it literally. Quoting the value into the text
 * instead (zx's `quote`) is only safe where the placeholder stands unquoted: a user who wrote
 * `echo "{language}"` would get `"$'…'"`, and a `$(…)` inside the value would run.
 *
 * The reference fits where the placeholder stands, so what the user wrote means what it says:
 *
 *   where               {language}                      {inputs}
 *   unquoted            "${STACKFLOW_LANGUAGE}"          "${STACKFLOW_INPUTS[@]}"   (one word each)
 *   "…" / heredoc       ${STACKFLOW_LANGUAGE}            ${STACKFLOW_INPUTS[*]}     (joined by spaces)
 *   '…'                 '"${STACKFLOW_LANGUAGE}"'        '"${STACKFLOW_INPUTS[*]}"'
 *   $'…'                '"${STACKFLOW_LANGUAGE}"$'       '"${STACKFLOW_INPUTS[*]}"$'
 *
 * The context comes from a small scanner of bash quoting (quotes, `\`, `$( )`, backticks,
 * comments, heredocs). Should it misjudge a context, the worst outcome is word splitting of a
 * value or stray quote characters, never execution: the text inserted is always one of the fixed
 * references above.
 */

/** Placeholders with one value, and the environment variable each is passed in. */
export const SHELL_SCALARS = {
  language: 'STACKFLOW_LANGUAGE',
  stem: 'STACKFLOW_STEM',
  shard: 'STACKFLOW_SHARD',
  stage: 'STACKFLOW_STAGE',
} as const;

/** Placeholders with a list of paths, and the bash array each is passed in. */
export const SHELL_LISTS = { inputs: 'STACKFLOW_INPUTS', outputs: 'STACKFLOW_OUTPUTS' } as const;

type Scalar = keyof typeof SHELL_SCALARS;
type List = keyof typeof SHELL_LISTS;

/** What `bash -c` is given: the script, its positional arguments, and extra environment. */
export interface ShellScript {
  /** The script text: a fixed prelude, then the command with placeholders as references. */
  script: string;
  /** `$0` and then the values of the list placeholders (inputs, then outputs). */
  args: string[];
  /** `STACKFLOW_LANGUAGE` and the other scalar values this task has. */
  env: Record<string, string>;
}

/** The values a task fills a command with. */
export interface ShellValues {
  /** `language`, `stem`, `shard`, `stage`: those the task's expansion has. */
  vars: Readonly<Record<string, string>>;
  inputs: readonly string[];
  outputs: readonly string[];
}

/** `$0` of the script (what bash names in its own error messages). */
const ARG0 = 'stackflow';

/**
 * The script for `bash -c`: a prelude that moves the arguments into `STACKFLOW_INPUTS` and
 * `STACKFLOW_OUTPUTS` (then clears them), followed on the same line by the rendered command, so
 * bash's line numbers in errors are the user's own.
 */
export function shellScript(template: string, values: ShellValues): ShellScript {
  const n = values.inputs.length;
  const prelude =
    `${SHELL_LISTS.inputs}=("\${@:1:${String(n)}}"); ` +
    `${SHELL_LISTS.outputs}=("\${@:${String(n + 1)}}"); set --; `;
  const env: Record<string, string> = {};
  for (const [name, variable] of Object.entries(SHELL_SCALARS)) {
    const v = values.vars[name];
    if (v !== undefined) env[variable] = v;
  }
  return {
    script: prelude + renderShellTemplate(template),
    args: [ARG0, ...values.inputs, ...values.outputs],
    env,
  };
}

type Context = 'plain' | 'dq' | 'sq' | 'ansi' | 'heredoc' | 'literal';

/** One level of the scanner's stack. */
interface Frame {
  ctx: Context;
  /** plain frames: opened by `$(` (closed by `)`), a backtick, or the script itself. */
  opener?: '$(' | '`';
  /** `$(` frames: `(` seen and not yet closed inside it. */
  depth?: number;
  /** heredoc and literal frames: the line that ends the body (after stripping tabs if `<<-`). */
  delimiter?: string;
  strip?: boolean;
}

const PLACEHOLDER = /(?<![{$])\{(language|stem|shard|stage|inputs|outputs)\}/y;
const HEREDOC = /<<(-?)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|(\\?)([A-Za-z0-9_.-]+))/y;
/** Characters after which `#` starts a comment (bash: `#` at the start of a word). */
const WORD_BREAK = /[\s;&|()<>]/;

/** The reference that stands for `name` in context `ctx` (see the table in the file comment). */
function reference(name: Scalar | List, ctx: Context): string {
  const list = name === 'inputs' || name === 'outputs';
  const v = list ? SHELL_LISTS[name] : SHELL_SCALARS[name];
  const joined = list ? `\${${v}[*]}` : `\${${v}}`;
  switch (ctx) {
    case 'plain':
      return list ? `"\${${v}[@]}"` : `"${joined}"`;
    case 'dq':
    case 'heredoc':
    case 'literal': // a quoted heredoc expands nothing: the reference shows as written
      return joined;
    case 'sq':
      return `'"${joined}"'`;
    case 'ansi':
      return `'"${joined}"$'`;
  }
}

/**
 * The command with every placeholder replaced by its reference (see the file comment). Text
 * other than placeholders is kept byte for byte.
 */
export function renderShellTemplate(template: string): string {
  const stack: Frame[] = [{ ctx: 'plain' }];
  /** Heredocs announced on the current line: their bodies follow it, in order. */
  const announced: Frame[] = [];
  let out = '';
  let i = 0;
  const top = (): Frame => stack[stack.length - 1] ?? { ctx: 'plain' };
  while (i < template.length) {
    const f = top();
    const lineStart = i === 0 || template[i - 1] === '\n';
    if ((f.ctx === 'heredoc' || f.ctx === 'literal') && lineStart) {
      let end = template.indexOf('\n', i);
      if (end < 0) end = template.length;
      const line = template.slice(i, end);
      if ((f.strip === true ? line.replace(/^\t+/, '') : line) === f.delimiter) {
        out += template.slice(i, end + 1);
        i = end + 1;
        stack.pop();
        const nextBody = announced.shift();
        if (nextBody !== undefined) stack.push(nextBody);
        continue;
      }
    }
    PLACEHOLDER.lastIndex = i;
    const m = PLACEHOLDER.exec(template);
    if (m !== null) {
      out += reference(m[1] as Scalar | List, f.ctx);
      i += m[0].length;
      continue;
    }
    const c = template[i] ?? '';
    const next = template[i + 1] ?? '';
    let take = 1;
    switch (f.ctx) {
      case 'literal':
        break;
      case 'sq':
        if (c === "'") stack.pop();
        break;
      case 'ansi':
        if (c === '\\') take = 2;
        else if (c === "'") stack.pop();
        break;
      case 'dq':
      case 'heredoc':
        if (c === '\\') take = 2;
        else if (c === '"' && f.ctx === 'dq') stack.pop();
        else if (c === '$' && next === '(') {
          stack.push({ ctx: 'plain', opener: '$(', depth: 0 });
          take = 2;
        } else if (c === '`') stack.push({ ctx: 'plain', opener: '`' });
        break;
      case 'plain': {
        if (c === '\\') take = 2;
        else if (c === "'") stack.push({ ctx: 'sq' });
        else if (c === '"') stack.push({ ctx: 'dq' });
        else if (c === '$' && next === "'") {
          stack.push({ ctx: 'ansi' });
          take = 2;
        } else if (c === '$' && next === '(') {
          stack.push({ ctx: 'plain', opener: '$(', depth: 0 });
          take = 2;
        } else if (c === '(' && f.opener === '$(') f.depth = (f.depth ?? 0) + 1;
        else if (c === ')' && f.opener === '$(') {
          if ((f.depth ?? 0) > 0) f.depth = (f.depth ?? 0) - 1;
          else stack.pop();
        } else if (c === '`') {
          if (f.opener === '`') stack.pop();
          else stack.push({ ctx: 'plain', opener: '`' });
        } else if (c === '#' && (i === 0 || WORD_BREAK.test(template[i - 1] ?? ''))) {
          // A comment runs to the end of the line; placeholders in it are still replaced.
          let end = template.indexOf('\n', i);
          if (end < 0) end = template.length;
          out += template
            .slice(i, end)
            .replace(new RegExp(PLACEHOLDER.source, 'g'), (_m, name: Scalar | List) =>
              reference(name, 'plain'),
            );
          i = end;
          continue;
        } else if (c === '<' && next === '<' && template[i + 2] !== '<') {
          HEREDOC.lastIndex = i;
          const h = HEREDOC.exec(template);
          if (h !== null) {
            const quoted = h[2] ?? h[3];
            announced.push({
              ctx: quoted !== undefined || h[4] === '\\' ? 'literal' : 'heredoc',
              delimiter: quoted ?? h[5] ?? '',
              strip: h[1] === '-',
            });
            take = h[0].length;
          }
        } else if (c === '\n' && announced.length > 0) {
          const body = announced.shift();
          if (body !== undefined) stack.push(body);
        }
        break;
      }
    }
    out += template.slice(i, i + take);
    i += take;
  }
  return out;
}
