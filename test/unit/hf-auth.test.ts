import { describe, expect, it } from 'vitest';
import type { ReadText } from '../../lib/io/hub/hf-auth.js';
import { resolveHfAuth } from '../../lib/io/hub/hf-auth.js';

/** A file reader over an in-memory map, recording what was read. */
function files(map: Record<string, string>): ReadText & { reads: string[] } {
  const reads: string[] = [];
  const f = (path: string) => {
    reads.push(path);
    return map[path];
  };
  return Object.assign(f, { reads });
}

describe('resolveHfAuth', () => {
  it('prefers HF_TOKEN, trimmed, and reads no file', () => {
    const fs = files({ '/home/u/.cache/huggingface/token': 'hf_file' });
    expect(resolveHfAuth({ HF_TOKEN: '  hf_env\n', HOME: '/home/u' }, fs)).toEqual({
      ok: true,
      value: { endpoint: 'https://huggingface.co', token: 'hf_env', tokenSource: 'HF_TOKEN' },
    });
    expect(fs.reads).toEqual([]);
  });

  it('then the file at HF_TOKEN_PATH (with ~ expanded)', () => {
    const fs = files({ '/home/u/tok': 'hf_path\n' });
    const r = resolveHfAuth({ HF_TOKEN: '  ', HF_TOKEN_PATH: '~/tok', HOME: '/home/u' }, fs);
    expect(r).toEqual({
      ok: true,
      value: { endpoint: 'https://huggingface.co', token: 'hf_path', tokenSource: '/home/u/tok' },
    });
  });

  it('then $HF_HOME/token, HF_HOME defaulting to ~/.cache/huggingface or XDG_CACHE_HOME', () => {
    const fs = files({
      '/hf/token': 'hf_home',
      '/home/u/.cache/huggingface/token': 'hf_default',
      '/xdg/huggingface/token': 'hf_xdg',
    });
    const token = (env: Record<string, string>) => {
      const r = resolveHfAuth(env, fs);
      return r.ok ? r.value.token : r.error.message;
    };
    expect(token({ HF_HOME: '/hf', HOME: '/home/u' })).toBe('hf_home');
    expect(token({ HOME: '/home/u' })).toBe('hf_default');
    expect(token({ HOME: '/home/u', XDG_CACHE_HOME: '/xdg' })).toBe('hf_xdg');
  });

  it('has no token when none is configured, or the file is empty', () => {
    expect(resolveHfAuth({ HOME: '/home/u' }, files({}))).toEqual({
      ok: true,
      value: { endpoint: 'https://huggingface.co' },
    });
    expect(resolveHfAuth({ HF_TOKEN_PATH: '/t' }, files({ '/t': ' \n' }))).toEqual({
      ok: true,
      value: { endpoint: 'https://huggingface.co' },
    });
    expect(resolveHfAuth({}, files({}))).toEqual({
      ok: true,
      value: { endpoint: 'https://huggingface.co' },
    });
  });

  it('refuses a token that cannot go into a header, without quoting it', () => {
    for (const [env, fs, source] of [
      [{ HF_TOKEN: 'hf_a\nhf_b' }, files({}), 'HF_TOKEN'],
      [{ HF_TOKEN_PATH: '/t' }, files({ '/t': 'hf_a hf_b\n' }), '/t'],
    ] as const) {
      const r = resolveHfAuth(env, fs);
      expect(r.ok).toBe(false);
      const msg = r.ok ? '' : r.error.message;
      expect(msg).toContain(`the Hugging Face token from ${source} contains`);
      expect(msg).not.toContain('hf_a');
    }
  });

  it('an unreadable token file is an error naming the file', () => {
    const r = resolveHfAuth({ HF_TOKEN_PATH: '/t' }, () => {
      throw new Error('EACCES: permission denied');
    });
    expect(r).toEqual({
      ok: false,
      error: {
        reason: 'invalid-input',
        message: 'cannot read the Hugging Face token file /t: EACCES: permission denied',
      },
    });
  });

  it('takes HF_ENDPOINT without its trailing slash, and refuses malformed ones', () => {
    const endpoint = (e: string) => {
      const r = resolveHfAuth({ HF_ENDPOINT: e }, files({}));
      return r.ok ? r.value.endpoint : r.error.message;
    };
    expect(endpoint('https://hf-mirror.com/')).toBe('https://hf-mirror.com');
    expect(endpoint('http://127.0.0.1:8080//')).toBe('http://127.0.0.1:8080');
    expect(endpoint('https://example.com/hub/')).toBe('https://example.com/hub');
    expect(endpoint('huggingface.co')).toContain('is not a URL');
    expect(endpoint('ftp://x')).toContain('must be an http(s) base URL');
    expect(endpoint('https://user:pw@x')).toBe(
      'HF_ENDPOINT must not contain credentials: set HF_TOKEN instead',
    );
  });
});
