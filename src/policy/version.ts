/**
 * Box versions compared the way Vagrant compares them (RubyGems' Gem::Version),
 * and version constraints as `vagrant box add --box-version` accepts them.
 */
import { usage } from '../errors.js';

type Segment = number | string;

function segments(v: string): Segment[] {
  const out: Segment[] = [];
  for (const part of v.trim().split('.')) {
    for (const m of part.matchAll(/[0-9]+|[A-Za-z]+/g)) out.push(/^[0-9]/.test(m[0]) ? Number(m[0]) : m[0]);
  }
  // trailing zeros do not count (1.0 == 1)
  while (out.length > 1 && out[out.length - 1] === 0) out.pop();
  return out;
}

export function isPrerelease(v: string): boolean {
  return /[A-Za-z]/.test(v);
}

export function compareVersions(a: string, b: string): number {
  const x = segments(a);
  const y = segments(b);
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const p = x[i] ?? 0;
    const q = y[i] ?? 0;
    if (p === q) continue;
    if (typeof p === 'string' && typeof q === 'number') return -1;
    if (typeof p === 'number' && typeof q === 'string') return 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

export type Constraint = { op: '=' | '!=' | '>' | '<' | '>=' | '<=' | '~>'; version: string };

export function parseConstraints(spec: string): Constraint[] {
  const parts = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw usage(`empty version constraint ${JSON.stringify(spec)}`);
  return parts.map((p) => {
    const m = /^(=|!=|>=|<=|>|<|~>)?\s*([0-9]+(?:\.[0-9A-Za-z]+)*(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?)$/.exec(p);
    if (!m) throw usage(`invalid version constraint ${JSON.stringify(p)} (examples: "1.2.3", ">= 1.2", "~> 1.2, != 1.2.5")`);
    return { op: (m[1] ?? '=') as Constraint['op'], version: m[2] };
  });
}

function pessimisticUpper(v: string): string {
  const segs = v.split('.');
  if (segs.length === 1) return String(Number(segs[0]) + 1);
  const keep = segs.slice(0, -1);
  keep[keep.length - 1] = String(Number(keep[keep.length - 1].replace(/[^0-9].*$/, '')) + 1);
  return keep.join('.');
}

export function satisfies(version: string, constraints: Constraint[]): boolean {
  return constraints.every(({ op, version: c }) => {
    const r = compareVersions(version, c);
    switch (op) {
      case '=':
        return r === 0;
      case '!=':
        return r !== 0;
      case '>':
        return r > 0;
      case '<':
        return r < 0;
      case '>=':
        return r >= 0;
      case '<=':
        return r <= 0;
      case '~>':
        return r >= 0 && compareVersions(version, pessimisticUpper(c)) < 0;
    }
  });
}
