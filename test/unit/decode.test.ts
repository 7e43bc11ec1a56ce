import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { decodeBlob, decodeText, resolveEncoding } from '../../tasks/pack/decode.js';

type IconvEncoding = Parameters<typeof iconv.encode>[1];

/** A text that needs the encoding, and the iconv-lite codec that produces the bytes. */
interface Sample {
  spellings: string[];
  encodeWith: IconvEncoding;
  text: string;
}

const iso = (n: number) => [`ISO-8859-${n}`, `ISO8859-${n}`];
const win = (n: number) => [`WINDOWS-${n}`, `CP${n}`];

/** Every spelling from DOMAIN.md §2, each with a text outside ASCII. */
const SAMPLES: Sample[] = [
  { spellings: ['UTF-8', 'UTF8'], encodeWith: 'utf8', text: 'héllo 世界 😀 ∑' },
  { spellings: iso(1), encodeWith: 'latin1', text: 'café ñandú Übergröße ÿ' },
  { spellings: iso(2), encodeWith: 'iso88592', text: 'Zażółć gęślą jaźń' },
  { spellings: iso(3), encodeWith: 'iso88593', text: 'Ħamrun ĉu ĝi ŭ ż' },
  { spellings: iso(4), encodeWith: 'iso88594', text: 'Ā ĸ Ŗ ų ū' },
  { spellings: iso(5), encodeWith: 'iso88595', text: 'Привет, мир' },
  { spellings: iso(6), encodeWith: 'iso88596', text: 'مرحبا بالعالم' },
  { spellings: iso(7), encodeWith: 'iso88597', text: 'Γειά σου κόσμε' },
  { spellings: iso(8), encodeWith: 'iso88598', text: 'שלום עולם' },
  { spellings: iso(9), encodeWith: 'iso88599', text: 'İstanbul ğüşıöç' },
  { spellings: iso(10), encodeWith: 'iso885910', text: 'Ŋ ŧ ĸ ð Þ' },
  { spellings: iso(11), encodeWith: 'iso885911', text: 'สวัสดีชาวโลก' },
  { spellings: iso(13), encodeWith: 'iso885913', text: 'ąčęėįšųūž “x”' },
  { spellings: iso(14), encodeWith: 'iso885914', text: 'Ŵŷ ḃ ẁ ẅ' },
  { spellings: iso(15), encodeWith: 'iso885915', text: 'œuvre € Šš' },
  { spellings: iso(16), encodeWith: 'iso885916', text: 'Știință țară €' },
  { spellings: ['WINDOWS-874'], encodeWith: 'cp874', text: 'สวัสดี “โลก” €…' },
  { spellings: win(1250), encodeWith: 'cp1250', text: 'Zażółć „cudzysłów” €' },
  { spellings: win(1251), encodeWith: 'cp1251', text: 'Привет „мир“ €' },
  { spellings: win(1252), encodeWith: 'cp1252', text: 'café “quotes” € – …' },
  { spellings: win(1253), encodeWith: 'cp1253', text: 'Γειά “σου” €' },
  { spellings: win(1254), encodeWith: 'cp1254', text: 'İstanbul “ğ” €' },
  { spellings: win(1255), encodeWith: 'cp1255', text: 'שלום “עולם” €' },
  { spellings: win(1256), encodeWith: 'cp1256', text: 'مرحبا “عالم” €' },
  { spellings: win(1257), encodeWith: 'cp1257', text: 'ąčę “ž” €' },
  { spellings: win(1258), encodeWith: 'cp1258', text: 'Đ đ ư ơ ₫ “x”' },
  { spellings: ['IBM852'], encodeWith: 'cp852', text: 'Zażółć ╔═╗' },
  { spellings: ['IBM855'], encodeWith: 'cp855', text: 'Привет ђ љ' },
  { spellings: ['IBM866'], encodeWith: 'cp866', text: 'Привет ╔═╗ ё' },
  { spellings: ['BIG5'], encodeWith: 'big5', text: '中文測試，繁體' },
  { spellings: ['EUC-JP'], encodeWith: 'eucjp', text: '日本語テキスト ｶﾀｶﾅ' },
  { spellings: ['GB18030'], encodeWith: 'gb18030', text: '中文测试 😀 €' },
  { spellings: ['KOI8-R'], encodeWith: 'koi8r', text: 'Привет, мир' },
  { spellings: ['KOI8-U'], encodeWith: 'koi8u', text: 'Привіт ґанок' },
  { spellings: ['MACINTOSH', 'MAC'], encodeWith: 'macintosh', text: 'café ñ ∑ ∂ ƒ' },
  { spellings: ['MACCENTRALEUROPE'], encodeWith: 'maccenteuro', text: 'Zażółć ő ű' },
  { spellings: ['MACCYRILLIC'], encodeWith: 'maccyrillic', text: 'Привет, мир' },
  { spellings: ['SHIFT_JIS'], encodeWith: 'shiftjis', text: '日本語テキスト ｶﾀｶﾅ' },
  { spellings: ['TIS-620'], encodeWith: 'tis620', text: 'สวัสดีชาวโลก' },
  { spellings: ['UHC'], encodeWith: 'cp949', text: '똠방각하 한국어' },
  { spellings: ['UTF-16'], encodeWith: 'utf16be', text: 'UTF-16 日本 😀' },
];

const gz = (b: Uint8Array | string) => gzipSync(b);

describe('decodeBlob round trips', () => {
  for (const { spellings, encodeWith, text } of SAMPLES) {
    for (const spelling of spellings) {
      it(spelling, () => {
        const bytes = iconv.encode(text, encodeWith);
        // The sample must really need the encoding (iconv-lite writes '?' for what it cannot encode).
        expect(iconv.decode(bytes, encodeWith)).toBe(text);
        expect(decodeBlob(gz(bytes), spelling)).toEqual({ ok: true, value: text });
      });
    }
  }

  it('covers every spelling from DOMAIN.md §2', () => {
    const covered = new Set(SAMPLES.flatMap((s) => s.spellings));
    const listed = [
      ...['UTF-8', 'UTF8', 'WINDOWS-874', 'IBM852', 'IBM855', 'IBM866', 'BIG5', 'EUC-JP'],
      ...['GB18030', 'KOI8-R', 'KOI8-U', 'MACINTOSH', 'MAC', 'MACCENTRALEUROPE', 'MACCYRILLIC'],
      ...['SHIFT_JIS', 'TIS-620', 'UHC', 'UTF-16'],
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16].flatMap(iso),
      ...[1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258].flatMap(win),
    ];
    expect(listed.filter((s) => !covered.has(s))).toEqual([]);
  });
});

describe('resolveEncoding', () => {
  it('is case-insensitive and ignores - _ variants', () => {
    for (const s of [
      'utf-8',
      'Utf_8',
      'shift-jis',
      'Shift_JIS',
      'iso_8859_1',
      'iso8859_1',
      'euc_jp',
    ]) {
      expect(resolveEncoding(s), s).toBeDefined();
    }
    expect(resolveEncoding('iso_8859_1')).toEqual(resolveEncoding('ISO-8859-1'));
    expect(resolveEncoding('cp1252')).toEqual(resolveEncoding('WINDOWS-1252'));
  });

  it('routes to TextDecoder or iconv-lite', () => {
    expect(resolveEncoding('UTF-8')).toEqual({ label: 'utf-8', via: 'textdecoder' });
    expect(resolveEncoding('UTF-16')).toEqual({ label: 'utf-16be', via: 'textdecoder' });
    expect(resolveEncoding('SHIFT_JIS')).toEqual({ label: 'shift_jis', via: 'textdecoder' });
    expect(resolveEncoding('ISO-8859-1')).toEqual({ label: 'latin1', via: 'iconv' });
    expect(resolveEncoding('IBM852')).toEqual({ label: 'cp852', via: 'iconv' });
    expect(resolveEncoding('MACCENTRALEUROPE')).toEqual({ label: 'maccenteuro', via: 'iconv' });
    expect(resolveEncoding('UHC')).toEqual({ label: 'cp949', via: 'iconv' });
    expect(resolveEncoding('EUC-KR')).toEqual({ label: 'cp949', via: 'iconv' });
  });

  it('knows no ISO-8859-12 and no made-up names', () => {
    expect(resolveEncoding('ISO-8859-12')).toBeUndefined();
    expect(resolveEncoding('KLINGON')).toBeUndefined();
    expect(resolveEncoding('')).toBeUndefined();
  });
});

/**
 * sha256 (first 16 hex digits) of the upper half of each single-byte table as CPython 3.11 decodes
 * it: for bytes 0x80..0xFF, the code point as 4 hex digits or `----` when Python raises, joined by
 * spaces. The lower half must be ASCII. Regenerate one entry with (codec = CPython's name: latin1,
 * iso8859_N, cp874, cpNNNN, koi8_r, koi8_u, mac_roman, mac_latin2, mac_cyrillic, tis_620):
 *
 *   import hashlib
 *   def cell(codec, b):
 *       try: return '%04x' % ord(bytes([b]).decode(codec))
 *       except UnicodeDecodeError: return '----'
 *   row = ' '.join(cell('cp1252', b) for b in range(0x80, 0x100))
 *   print(hashlib.sha256(row.encode()).hexdigest()[:16])
 */
const CPYTHON_HIGH_HALF: Record<string, string> = {
  'ISO-8859-1': 'd7c225f0d00496f5',
  'ISO-8859-2': '7eb4ce250a245fc7',
  'ISO-8859-3': '19e02023c652c4cd',
  'ISO-8859-4': '5670fcb92a6acc78',
  'ISO-8859-5': 'd145bc629cf45fda',
  'ISO-8859-6': '74f1505ad4b5cf56',
  'ISO-8859-7': '6444ebb35467b8be',
  'ISO-8859-8': '98911f58c0dc2c6c',
  'ISO-8859-9': 'ff9d0e0ce500c12b',
  'ISO-8859-10': 'e92fe716a50d69a3',
  'ISO-8859-11': '3f652a71a6f5b265',
  'ISO-8859-13': '1f070f7e29e05346',
  'ISO-8859-14': '0cd56e4ff58b5a44',
  'ISO-8859-15': 'c81a554b4b8b27f4',
  'ISO-8859-16': 'c7e1e9b0b992f5eb',
  'WINDOWS-874': '9f4381eae3f391ae',
  'WINDOWS-1250': '2b082780c6cbda10',
  'WINDOWS-1251': 'e2682d6e8c1747e4',
  'WINDOWS-1252': 'c3132f4712c0ad40',
  'WINDOWS-1253': '944e01cfbd56d1c6',
  'WINDOWS-1254': '2fd08bc9bc4dea56',
  'WINDOWS-1255': '13649ee181e4d662',
  'WINDOWS-1256': 'b7cf59eb43450a00',
  'WINDOWS-1257': '0cc3e1083b2b0dd2',
  'WINDOWS-1258': 'dd5e52e4fec2d67b',
  IBM852: 'e94e2d0d821f662e',
  IBM855: '81ea0af317086b92',
  IBM866: 'b446fd49a20e13f8',
  'KOI8-R': '7cab04db2387646a',
  'KOI8-U': 'ad498dbcb8e0dd23',
  MACINTOSH: '472406c73ab04112',
  MACCENTRALEUROPE: 'c6b71aa758993ac1',
  MACCYRILLIC: '34c20bf543e57da2',
  'TIS-620': '861c8517f88eca4c',
};

describe('single-byte tables match CPython byte for byte', () => {
  for (const [spelling, expected] of Object.entries(CPYTHON_HIGH_HALF)) {
    it(spelling, () => {
      for (let b = 0; b < 0x80; b++) {
        expect(decodeText(Uint8Array.of(b), spelling)).toEqual({
          ok: true,
          value: String.fromCharCode(b),
        });
      }
      const cells: string[] = [];
      for (let b = 0x80; b < 0x100; b++) {
        const r = decodeText(Uint8Array.of(b), spelling);
        if (r.ok) {
          expect(r.value).toHaveLength(1); // single-byte tables are all in the BMP
          cells.push((r.value.codePointAt(0) ?? 0).toString(16).padStart(4, '0'));
        } else {
          expect(r.error.reason).toBe('undecodable');
          cells.push('----');
        }
      }
      const hash = createHash('sha256').update(cells.join(' ')).digest('hex').slice(0, 16);
      expect(hash).toBe(expected);
    });
  }

  // The places where Node 20's ICU TextDecoder differs from CPython, pinned one by one.
  const one = (b: number, spelling: string) => decodeText(Uint8Array.of(b), spelling);
  it.each([
    ['ISO-8859-1', 0x80, '\u0080'],
    ['WINDOWS-1252', 0x80, '€'],
    ['ISO-8859-9', 0x80, '\u0080'],
    ['ISO-8859-11', 0x80, '\u0080'],
    ['IBM866', 0x7f, '\u007f'],
    ['IBM866', 0x1a, '\u001a'],
    ['MACINTOSH', 0xdb, '€'],
    ['MACINTOSH', 0xbd, 'Ω'],
    ['MACCYRILLIC', 0xff, '€'],
    ['TIS-620', 0xa1, 'ก'],
  ])('%s: byte %d', (spelling, b, char) => {
    expect(one(b, spelling)).toEqual({ ok: true, value: char });
  });
  it.each([
    ['WINDOWS-1252', 0x81],
    ['WINDOWS-1250', 0x81],
    ['ISO-8859-11', 0xdb],
    ['TIS-620', 0xa0],
    ['ISO-8859-3', 0xa5],
    ['WINDOWS-1255', 0xca],
  ])('%s: byte %d is unassigned', (spelling, b) => {
    const r = one(b, spelling);
    expect(r.ok ? r.value : r.error.reason).toBe('undecodable');
  });
});

describe('BOMs', () => {
  it('strips a UTF-8 BOM', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('x = 1')]);
    expect(decodeBlob(gz(bytes), 'UTF-8')).toEqual({ ok: true, value: 'x = 1' });
  });

  it('UTF-16 honours a little-endian or big-endian BOM and defaults to big endian', () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode('hé 😀', 'utf16le')]);
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), iconv.encode('hé 😀', 'utf16be')]);
    expect(decodeBlob(gz(le), 'UTF-16')).toEqual({ ok: true, value: 'hé 😀' });
    expect(decodeBlob(gz(be), 'UTF-16')).toEqual({ ok: true, value: 'hé 😀' });
    expect(decodeBlob(gz(iconv.encode('hé', 'utf16be')), 'UTF-16')).toEqual({
      ok: true,
      value: 'hé',
    });
  });
});

describe('errors', () => {
  const reason = (r: ReturnType<typeof decodeBlob>) => (r.ok ? `ok: ${r.value}` : r.error.reason);

  it('invalid UTF-8 is undecodable, with the offset', () => {
    const r = decodeBlob(gz(Buffer.from([0x61, 0x62, 0xc3, 0x28, 0x63])), 'UTF-8');
    expect(r).toEqual({
      ok: false,
      error: { reason: 'undecodable', detail: 'invalid utf-8 sequence at byte offset 3 (0x28)' },
    });
    expect(reason(decodeBlob(gz(Buffer.from([0xed, 0xa0, 0x80])), 'UTF-8'))).toBe('undecodable');
  });

  it('a truncated sequence at the end is undecodable', () => {
    const r = decodeText(Buffer.from([0x61, 0xe4, 0xb8]), 'UTF-8');
    expect(r).toEqual({
      ok: false,
      error: {
        reason: 'undecodable',
        detail: 'truncated utf-8 sequence at end of input (3 bytes)',
      },
    });
    expect(reason(decodeBlob(gz(Buffer.from([0x00, 0x41, 0xd8])), 'UTF-16'))).toBe('undecodable');
  });

  it('invalid Shift_JIS is undecodable', () => {
    const ok = iconv.encode('日本', 'shiftjis');
    const bad = Buffer.concat([ok, Buffer.from([0x81, 0x7f, 0xff])]);
    const r = decodeBlob(gz(bad), 'SHIFT_JIS');
    expect(reason(r)).toBe('undecodable');
    expect(r.ok ? '' : r.error.detail).toContain(`offset ${ok.length + 1}`);
    expect(reason(decodeBlob(gz(Buffer.from([0xff])), 'SHIFT_JIS'))).toBe('undecodable');
  });

  it('invalid UHC and unassigned single bytes are undecodable, with the offset', () => {
    const r = decodeText(Buffer.from([0x41, 0x8c, 0x20, 0x42]), 'UHC');
    expect(reason(r)).toBe('undecodable');
    expect(r.ok ? '' : r.error.detail).toContain('offset 2');
    expect(decodeText(Buffer.from('ab\x81', 'latin1'), 'CP1252')).toEqual({
      ok: false,
      error: { reason: 'undecodable', detail: 'byte 0x81 at offset 2 is unassigned in cp1252' },
    });
  });

  it('truncated gzip is corrupt-gzip', () => {
    const full = gz('some source text\n'.repeat(100));
    const r = decodeBlob(full.subarray(0, full.length - 10), 'UTF-8');
    expect(r).toEqual({
      ok: false,
      error: { reason: 'corrupt-gzip', detail: 'unexpected end of file' },
    });
    expect(reason(decodeBlob(full.subarray(0, 5), 'UTF-8'))).toBe('corrupt-gzip');
  });

  it('garbage, an empty blob and a bad checksum are corrupt-gzip', () => {
    expect(reason(decodeBlob(Buffer.from('definitely not gzip'), 'UTF-8'))).toBe('corrupt-gzip');
    expect(reason(decodeBlob(new Uint8Array(0), 'UTF-8'))).toBe('corrupt-gzip');
    const flipped = Buffer.from(gz('hello'));
    flipped[flipped.length - 6] = (flipped[flipped.length - 6] ?? 0) ^ 1;
    expect(reason(decodeBlob(flipped, 'UTF-8'))).toBe('corrupt-gzip');
    expect(reason(decodeBlob(Buffer.concat([gz('a'), Buffer.from('junk')]), 'UTF-8'))).toBe(
      'corrupt-gzip',
    );
  });

  it('reads concatenated gzip members', () => {
    expect(decodeBlob(Buffer.concat([gz('hello '), gz('world')]), 'UTF-8')).toEqual({
      ok: true,
      value: 'hello world',
    });
  });

  it('caps the decompressed size', () => {
    const bomb = gz(Buffer.alloc(2 * 1024 * 1024));
    expect(decodeBlob(bomb, 'UTF-8', { maxBytes: 1024 * 1024 })).toEqual({
      ok: false,
      error: { reason: 'corrupt-gzip', detail: 'too large' },
    });
    expect(reason(decodeBlob(gz(Buffer.alloc(1000, 0x61)), 'UTF-8', { maxBytes: 1000 }))).toBe(
      `ok: ${'a'.repeat(1000)}`,
    );
  });

  it('unknown encoding is unknown-encoding, checked before gunzip', () => {
    expect(decodeBlob(Buffer.from('not gzip'), 'EBCDIC-XYZ')).toEqual({
      ok: false,
      error: { reason: 'unknown-encoding', detail: 'unknown encoding "EBCDIC-XYZ"' },
    });
  });

  it('an empty file is the empty string in every encoding', () => {
    for (const spelling of SAMPLES.flatMap((s) => s.spellings)) {
      expect(decodeBlob(gz(''), spelling), spelling).toEqual({ ok: true, value: '' });
    }
  });

  it('a decoder is reusable after an error', () => {
    expect(reason(decodeText(Buffer.from([0x82]), 'SHIFT_JIS'))).toBe('undecodable');
    expect(decodeText(Buffer.from('A'), 'SHIFT_JIS')).toEqual({ ok: true, value: 'A' });
  });
});
