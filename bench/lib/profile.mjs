// Summarise a V8 .cpuprofile (from `node --cpu-prof`): where the main thread
// spent its time. The profile only sees the main JavaScript thread; time spent
// waiting for the libuv thread pool (zlib inflate, fs reads/writes, async
// crypto) shows up as "(idle)".
import fs from 'node:fs';
import path from 'node:path';

/** Coarse buckets that answer "inflate vs hashing vs writes vs parsing". */
function bucket(frame) {
  const { functionName: fn, url } = frame;
  if (fn === '(idle)') return 'idle (waiting: thread pool, I/O)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native (program)';
  if (fn === '(root)') return 'other';
  if (/internal\/crypto\/hash/.test(url)) return 'SHA-256 (main thread)';
  if (/node:zlib|^zlib$/.test(url)) return 'zlib glue (inflate itself is on the thread pool)';
  if (/internal\/fs|node:fs/.test(url)) return 'fs calls (reads, writes)';
  if (/internal\/streams|node:stream/.test(url)) return 'streams machinery';
  if (/node_modules\/openpgp/.test(url)) return 'OpenPGP.js';
  if (/node_modules\//.test(url)) return 'other dependencies';
  if (/\/dist\/archive\/tar/.test(url)) return 'boxsig tar parser';
  if (/\/dist\//.test(url)) return 'boxsig (other)';
  if (/^node:|internal\//.test(url)) return 'node internals (other)';
  if (!url) return 'native / builtins';
  return 'other';
}

export function summarizeProfile(file, { top = 12 } = {}) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples, timeDeltas } = prof;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const total = (prof.endTime - prof.startTime) / 1000; // ms
  const fns = new Map();
  const buckets = new Map();
  for (const [id, us] of self) {
    const f = byId.get(id).callFrame;
    const where = f.url ? `${path.basename(f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us / 1000);
    const b = bucket(f);
    buckets.set(b, (buckets.get(b) ?? 0) + us / 1000);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms, share: total ? ms / total : 0 }));
  const idle = buckets.get('idle (waiting: thread pool, I/O)') ?? 0;
  return { file, totalMs: total, mainThreadBusyShare: total ? 1 - idle / total : 0, buckets: sorted(buckets), top: sorted(fns).slice(0, top) };
}

export function formatProfile(name, s) {
  const lines = [];
  lines.push(`${name}: ${(s.totalMs / 1000).toFixed(2)} s profiled, main thread busy ${(s.mainThreadBusyShare * 100).toFixed(0)}%`);
  lines.push('  by bucket:');
  for (const b of s.buckets)
    if (b.share >= 0.005) lines.push(`    ${(b.share * 100).toFixed(1).padStart(5)}%  ${(b.ms / 1000).toFixed(2).padStart(6)} s  ${b.name}`);
  lines.push('  top self time:');
  for (const f of s.top) lines.push(`    ${(f.share * 100).toFixed(1).padStart(5)}%  ${(f.ms / 1000).toFixed(2).padStart(6)} s  ${f.name}`);
  return lines.join('\n');
}
