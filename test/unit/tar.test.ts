/**
 * The tar header parser as a table: hand-built header blocks (no tar writer
 * involved) and what the parser makes of them — the entries it reports, or
 * the refusal code. Pure logic: runs in milliseconds.
 */
import t from 'tap';
import { BLOCK, TarParser, parsePax, type TarEvent } from '../../src/archive/tar.js';
import { BoxsigError } from '../../src/errors.js';

interface H {
  name: string;
  size?: number;
  type?: string;
  mode?: number;
  prefix?: string;
  /** 'ustar' (POSIX), 'gnu' (GNU tar) or 'v7' (no magic) */
  format?: 'ustar' | 'gnu' | 'v7';
  /** write this instead of the computed checksum */
  checksum?: string;
  /** raw bytes to write into the header at an offset, after the rest */
  patch?: [number, number[]];
}

const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';

function header(h: H): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  b.write(octal(h.mode ?? 0o644, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  b.write(octal(h.size ?? 0, 12), 124, 'latin1');
  b.write(octal(0, 12), 136, 'latin1');
  b.write(h.type ?? '0', 156, 'latin1');
  const format = h.format ?? 'ustar';
  if (format === 'ustar') b.write('ustar\x0000', 257, 'latin1');
  if (format === 'gnu') b.write('ustar  \x00', 257, 'latin1');
  if (format !== 'v7') {
    b.write(octal(0, 8), 329, 'latin1');
    b.write(octal(0, 8), 337, 'latin1');
  }
  if (h.prefix) b.write(h.prefix, 345, 155, 'utf8');
  if (h.patch) Buffer.from(h.patch[1]).copy(b, h.patch[0]);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const v of b) sum += v;
  b.write(h.checksum ?? octal(sum, 7) + ' ', 148, 'latin1');
  return b;
}

function file(h: H, data: string): Buffer[] {
  const body = Buffer.from(data);
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  return [header({ ...h, size: h.size ?? body.length }), body, Buffer.alloc(pad)];
}

function pax(records: Record<string, string>): Buffer[] {
  const body = Buffer.from(
    Object.entries(records)
      .map(([k, v]) => {
        const rest = ` ${k}=${v}\n`;
        let len = rest.length + 1;
        while (String(len).length + rest.length !== len) len++;
        return `${len}${rest}`;
      })
      .join(''),
  );
  return file({ name: 'PaxHeader', type: 'x' }, body.toString());
}

const END = Buffer.alloc(2 * BLOCK);

/** Parse the parts in chunks of `chunk` bytes; the entries seen (path, type, size, data) or the refusal code. */
function parse(parts: Buffer[], chunk = 4096): { entries: string[] } | { code: string; message: string } {
  const all = Buffer.concat(parts);
  const p = new TarParser();
  const entries: string[] = [];
  let data = '';
  try {
    for (let i = 0; i < all.length; i += chunk) {
      const events: TarEvent[] = p.push(all.subarray(i, i + chunk));
      for (const e of events) {
        if (e.kind === 'data') data += e.chunk.toString();
        if (e.kind === 'entryEnd') {
          entries.push(`${e.entry.type} ${e.entry.path} ${e.entry.size}${data ? ` ${data}` : ''}`);
          data = '';
        }
      }
    }
    p.end();
    return { entries };
  } catch (e) {
    if (!(e instanceof BoxsigError)) throw e;
    return { code: e.code, message: e.message };
  }
}

interface Row {
  name: string;
  parts: Buffer[];
  entries?: string[];
  refused?: string;
  message?: RegExp;
}

const ROWS: Row[] = [
  { name: 'a ustar file', parts: [...file({ name: 'metadata.json' }, '{}'), END], entries: ['file metadata.json 2 {}'] },
  { name: 'a GNU header', parts: [...file({ name: 'a', format: 'gnu' }, 'x'), END], entries: ['file a 1 x'] },
  { name: 'a v7 header', parts: [...file({ name: 'a', format: 'v7' }, 'x'), END], entries: ['file a 1 x'] },
  {
    name: 'a directory and a file in it',
    parts: [header({ name: 'd/', type: '5', mode: 0o755 }), ...file({ name: 'd/f' }, 'y'), END],
    entries: ['directory d 0', 'file d/f 1 y'],
  },
  {
    name: 'the ustar prefix joins the name',
    parts: [...file({ name: 'disk.vmdk', prefix: 'box/images' }, 'z'), END],
    entries: ['file box/images/disk.vmdk 1 z'],
  },
  { name: './ is normalised away', parts: [...file({ name: './metadata.json' }, '{}'), END], entries: ['file metadata.json 2 {}'] },
  { name: 'type NUL is a regular file (old tars)', parts: [...file({ name: 'a', type: '\0' }, 'x'), END], entries: ['file a 1 x'] },
  { name: 'an empty file', parts: [...file({ name: 'e' }, ''), END], entries: ['file e 0'] },
  { name: 'data exactly one block long', parts: [...file({ name: 'b' }, 'q'.repeat(BLOCK)), END], entries: [`file b 512 ${'q'.repeat(BLOCK)}`] },
  {
    name: 'a pax path overrides the header name',
    parts: [...pax({ path: 'long/'.repeat(30) + 'name' }), ...file({ name: 'short' }, 'p'), END],
    entries: [`file ${'long/'.repeat(30)}name 1 p`],
  },
  {
    name: 'pax metadata-only keywords are ignored',
    parts: [...pax({ mtime: '1.5', uname: 'root' }), ...file({ name: 'm' }, 'x'), END],
    entries: ['file m 1 x'],
  },
  {
    name: 'a GNU long name',
    parts: [...file({ name: '././@LongLink', type: 'L' }, 'gnu/long/name\0'), ...file({ name: 'x' }, 'g'), END],
    entries: ['file gnu/long/name 1 g'],
  },
  {
    name: 'a base-256 size',
    parts: [header({ name: 'big', size: 0, patch: [124, [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]] }), Buffer.from('x'), Buffer.alloc(BLOCK - 1), END],
    entries: ['file big 1 x'],
  },

  { name: 'an empty input', parts: [], refused: 'MALFORMED', message: /empty/ },
  { name: 'no end-of-archive marker', parts: [...file({ name: 'a' }, 'x')], refused: 'MALFORMED', message: /truncated/ },
  { name: 'truncated inside a file', parts: [header({ name: 'a', size: 100 }), Buffer.from('x')], refused: 'MALFORMED', message: /truncated inside "a"/ },
  { name: 'a bad checksum', parts: [header({ name: 'a', checksum: '0000000\0' }), END], refused: 'MALFORMED', message: /checksum mismatch/ },
  {
    name: 'an unknown magic',
    parts: [header({ name: 'a', patch: [257, [...Buffer.from('ustaR\x0000')]] }), END],
    refused: 'MALFORMED',
    message: /unknown tar header format/,
  },
  { name: 'a blank size field', parts: [header({ name: 'a', patch: [124, Array(12).fill(0x20)] }), END], refused: 'MALFORMED', message: /blank size/ },
  {
    name: 'garbage in the mode field',
    parts: [header({ name: 'a', patch: [100, [...Buffer.from('06x4\0')]] }), END],
    refused: 'MALFORMED',
    message: /invalid mode/,
  },
  { name: 'a negative base-256 size', parts: [header({ name: 'a', patch: [124, [0xff, 0xff]] }), END], refused: 'MALFORMED', message: /negative or oversized/ },
  {
    name: 'a directory with a size',
    parts: [header({ name: 'd/', type: '5', size: 1 }), Buffer.alloc(BLOCK), END],
    refused: 'MALFORMED',
    message: /non-zero size/,
  },
  {
    name: 'data after the end-of-archive marker',
    parts: [...file({ name: 'a' }, 'x'), END, Buffer.from('junk'), Buffer.alloc(BLOCK - 4)],
    refused: 'MALFORMED',
    message: /after the end-of-archive/,
  },
  {
    name: 'two pax headers for one entry',
    parts: [...pax({ path: 'a' }), ...pax({ path: 'b' }), ...file({ name: 'c' }, 'x'), END],
    refused: 'MALFORMED',
    message: /two pax/,
  },
  {
    name: 'a pax path and a GNU long name',
    parts: [...pax({ path: 'a' }), ...file({ name: '././@LongLink', type: 'L' }, 'b\0'), ...file({ name: 'c' }, 'x'), END],
    refused: 'MALFORMED',
  },
  {
    name: 'an unknown pax keyword',
    parts: [...pax({ 'VENDOR.thing': '1' }), ...file({ name: 'c' }, 'x'), END],
    refused: 'MALFORMED',
    message: /unsupported pax keyword/,
  },
  {
    name: 'a pax global header that sets a path',
    parts: [...file({ name: 'g', type: 'g' }, '12 path=abc\n'), ...file({ name: 'c' }, 'x'), END],
    refused: 'MALFORMED',
    message: /global header/,
  },
  { name: 'an invalid pax size', parts: [...pax({ size: '-1' }), ...file({ name: 'c' }, 'x'), END], refused: 'MALFORMED', message: /invalid pax size/ },
  { name: 'a sparse pax entry', parts: [...pax({ 'GNU.sparse.map': '0,1' }), ...file({ name: 'c' }, 'x'), END], refused: 'UNSAFE_ENTRY', message: /sparse/ },
  { name: 'a symbolic link', parts: [header({ name: 'l', type: '2' }), END], refused: 'UNSAFE_ENTRY', message: /symbolic link/ },
  { name: 'a hard link', parts: [header({ name: 'l', type: '1' }), END], refused: 'UNSAFE_ENTRY', message: /hard link/ },
  { name: 'a character device', parts: [header({ name: 'c', type: '3' }), END], refused: 'UNSAFE_ENTRY', message: /device/ },
  { name: 'a FIFO', parts: [header({ name: 'p', type: '6' }), END], refused: 'UNSAFE_ENTRY', message: /FIFO/ },
  { name: 'an unknown entry type', parts: [header({ name: 'u', type: 'Z' }), END], refused: 'UNSAFE_ENTRY', message: /unsupported tar entry type/ },
  { name: 'an absolute path', parts: [...file({ name: '/etc/passwd' }, 'x'), END], refused: 'UNSAFE_ENTRY' },
  { name: 'a .. path', parts: [...file({ name: '../x' }, 'x'), END], refused: 'UNSAFE_ENTRY' },
  { name: 'a regular file whose name ends in /', parts: [...file({ name: 'f/' }, 'x'), END], refused: 'UNSAFE_ENTRY', message: /ending in "\/"/ },
  {
    name: 'GNU sparse data in a GNU header',
    parts: [header({ name: 'a', format: 'gnu', patch: [386, [1]] }), END],
    refused: 'MALFORMED',
    message: /sparse, multi-volume/,
  },
];

for (const row of ROWS) {
  t.test(row.name, async (t) => {
    for (const chunk of [1, 7, BLOCK, 1 << 16]) {
      const got = parse(row.parts, chunk);
      if (row.entries) t.same(got, { entries: row.entries }, `chunks of ${chunk}`);
      else {
        t.equal('code' in got && got.code, row.refused, `chunks of ${chunk}: ${'message' in got ? got.message : 'accepted'}`);
        if (row.message && 'message' in got) t.match(got.message, row.message);
      }
    }
  });
}

t.test('pax records', async (t) => {
  t.same(parsePax(Buffer.from('9 path=a\n12 size=123\n')), [
    ['path', 'a'],
    ['size', '123'],
  ]);
  const refused = (s: string) => t.throws(() => parsePax(Buffer.from(s)), { code: 'MALFORMED' }, JSON.stringify(s));
  refused('9 path=a\n\0\0');
  refused('99 path=a\n');
  refused('9 path=ab');
  refused('08 path=a\n');
  refused('9 path=a\n9 path=b\n');
  refused('6 =ab\n');
});

t.test('an error after complete events waits for the next push or end(): the events come first, whatever the chunking', async (t) => {
  const good = file({ name: 'disk.img' }, 'the last bytes of a file');
  const bad = header({ name: 'metadata.json', checksum: '1234567\0' });
  const all = Buffer.concat([...good, bad, END]);
  const p = new TarParser();
  const events = p.push(all);
  t.same(
    events.map((e) => e.kind),
    ['entry', 'data', 'entryEnd'],
    'one push of the file and the damaged header after it: the file’s events, no error yet',
  );
  t.throws(() => p.push(Buffer.alloc(0)), { code: 'MALFORMED' }, 'the next push throws the kept error');
  t.throws(() => p.end(), { code: 'MALFORMED' }, 'and so does end()');
  const q = new TarParser();
  q.push(all);
  t.throws(() => q.checkPending(), { code: 'MALFORMED' }, 'checkPending() throws it for a caller that feeds one buffer');
  t.throws(() => new TarParser().push(bad), { code: 'MALFORMED' }, 'an error before any event is thrown at once');
  for (const chunk of [1, 100, 512, 4096, all.length]) {
    const r = parse([all], chunk);
    t.match(r, { code: 'MALFORMED' }, `chunks of ${chunk} bytes: the same refusal`);
  }
});
