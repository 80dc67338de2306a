// The catalog-read reference: nginx serving one JSON file, and wrk measuring requests per
// second against any URL (nginx's or the registry's), both from Debian's packages.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const which = (cmd) => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};

/** A free TCP port on the loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function nginxConf(dir, port, workers) {
  const p = (...x) => path.join(dir, ...x);
  return `worker_processes ${workers};
daemon off;
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${p('tmp', 'body')};
  proxy_temp_path ${p('tmp', 'proxy')};
  fastcgi_temp_path ${p('tmp', 'fastcgi')};
  uwsgi_temp_path ${p('tmp', 'uwsgi')};
  scgi_temp_path ${p('tmp', 'scgi')};
  types { }
  default_type application/json;
  server {
    listen 127.0.0.1:${port};
    root ${p('root')};
    # GET /ORG/NAME serves ORG/NAME.json, as the registry serves a catalog
    location / { try_files $uri.json $uri =404; }
  }
}
`;
}

/**
 * Start nginx (in the foreground, as a child) serving `json` at /ORG/NAME with `workers`
 * worker processes; resolves to { url, stop() } once it answers.
 */
export async function startNginx({ dir, json, catalogPath = '/acme/box', workers = 2 }) {
  const nginx = which('nginx');
  if (!nginx) throw new Error('nginx is not installed (apt-get install -y nginx)');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const file = path.join(dir, 'root', `${catalogPath}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, json);
  // nginx's workers run as nobody when started by root: the tree must be readable by all
  for (let d = path.dirname(file); d.startsWith(dir); d = path.dirname(d)) fs.chmodSync(d, 0o755);
  fs.chmodSync(file, 0o644);
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, workers));
  const child = spawn(nginx, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}${catalogPath}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGQUIT');
    await exited;
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}${fs.readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
    const ok = await fetch(url).then(
      async (r) => r.status === 200 && (await r.text()) === json,
      () => false,
    );
    if (ok) return { url, stop, pid: child.pid };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`nginx did not serve ${url} within 10 s`);
}

/** Parse wrk's report: requests per second, latency, errors. */
export function parseWrk(out) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const lat = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const unit = { us: 1e-6, ms: 1e-3, s: 1 };
  return {
    rps: rps ? Number(rps[1]) : null,
    latencyAvg: lat ? Number(lat[1]) * unit[lat[2]] : null,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0,
  };
}

/**
 * Requests per second of GET `url` (or the sum over several URLs, each with its share of the
 * connections and threads, all at once) for `seconds`. Bounded: wrk stops by itself.
 */
export async function wrk(urls, { seconds = 10, connections = 64, threads = 2 } = {}) {
  const bin = which('wrk');
  if (!bin) throw new Error('wrk is not installed (apt-get install -y wrk)');
  const list = Array.isArray(urls) ? urls : [urls];
  const share = (n) => Math.max(1, Math.floor(n / list.length));
  const runs = list.map(
    (u) =>
      new Promise((resolve, reject) => {
        const child = spawn(bin, [`-t${share(threads)}`, `-c${Math.max(share(connections), share(threads))}`, `-d${seconds}s`, '--timeout', '5s', u], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited ${code}: ${out}`))));
      }),
  );
  const results = await Promise.all(runs);
  return {
    rps: results.reduce((a, r) => a + (r.rps ?? 0), 0),
    latencyAvg: Math.max(...results.map((r) => r.latencyAvg ?? 0)),
    non2xx: results.reduce((a, r) => a + r.non2xx, 0),
    socketErrors: results.reduce((a, r) => a + r.socketErrors, 0),
  };
}
