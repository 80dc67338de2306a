/**
 * What a client keeps of the registries it reads from ($BOXSIG_HOME/registries.json)
 * and the `registries` pins of config files: table-driven.
 */
import t from 'tap';
import { parseRegistries, serializeRegistries, type RegistriesState } from '../../src/trust/registries.js';
import { registryOrigin, validateConfig } from '../../src/policy/config.js';
import { generateSignerKey } from '../../src/tlog/note.js';

const KEY = generateSignerKey('boxes.test').verifierKey;

t.test('registries.json: origins and box names are Map keys and round-trip', async (t) => {
  const state: RegistriesState = new Map([
    [
      'http://127.0.0.1:8080',
      {
        key: KEY,
        firstSeen: '2026-01-01T00:00:00.000Z',
        checkpoint: { size: 3, root: 'AAAA', note: 'n' },
        catalogs: new Map([
          ['__proto__', { serial: 1, digest: 'd', expires: 'e' }],
          ['constructor', { serial: 2, digest: 'd', expires: 'e' }],
        ]),
      },
    ],
  ]);
  const text = serializeRegistries(state);
  const back = parseRegistries(text, 'registries.json');
  t.same([...back.get('http://127.0.0.1:8080')!.catalogs.keys()].sort(), ['__proto__', 'constructor']);
  t.equal(back.get('http://127.0.0.1:8080')!.catalogs.get('toString'), undefined, 'nothing is found on a prototype');
  t.equal(serializeRegistries(back), text);
});

t.test('a damaged registries.json is a CONFIG error naming the file', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['{', /registries\.json: not valid JSON/],
    ['{"format":2,"registries":{}}', /not a boxsig registries file/],
    ['{"format":1,"registries":{"http://a":{"key":1}}}', /registries\["http:\/\/a"\] is not a record/],
    ['{"format":1,"registries":{"http://a":{"key":"k","firstSeen":"t","catalogs":{},"checkpoint":{"size":"1"}}}}', /checkpoint is not a checkpoint/],
    ['{"format":1,"registries":{"http://a":{"key":"k","firstSeen":"t","catalogs":{"a/b":{"serial":-0.5}}}}}', /catalogs\["a\/b"\] is not a record/],
  ];
  for (const [text, re] of rows) t.throws(() => parseRegistries(text, 'registries.json'), { code: 'CONFIG', message: re }, text);
});

t.test('config: registries pins are validated and keyed by origin', async (t) => {
  const doc = validateConfig({ registries: { 'https://Boxes.Example:443/some/path': { key: KEY } } }, 'boxsig.json');
  t.same([...doc.registries!], [['https://boxes.example', KEY]], 'the origin, normalised');
  const bad: Array<[unknown, RegExp]> = [
    [{ registries: [] }, /registries: must be an object/],
    [{ registries: { 'ftp://x': { key: KEY } } }, /must be an http\(s\) URL/],
    [{ registries: { 'https://x': { key: 'nope' } } }, /\.key: must be the registry key/],
    [{ registries: { 'https://x': KEY } }, /\.key: must be the registry key/],
  ];
  for (const [raw, re] of bad) t.throws(() => validateConfig(raw, 'boxsig.json'), { code: 'CONFIG', message: re }, JSON.stringify(raw));
  t.equal(registryOrigin('http://127.0.0.1:8080/acme/web'), 'http://127.0.0.1:8080');
  t.equal(registryOrigin('file:///x'), null);
  t.equal(registryOrigin('not a url'), null);
});
