/**
 * Loaded into every test process (.taprc `node-arg`). tap puts its
 * process-info hook (`--import=…/@tapjs/processinfo/…/import.mjs`) into the
 * NODE_OPTIONS of every process a test spawns, whatever env the test gives
 * it: every `boxsig`, `registry serve` and, through Vagrant's plugin and
 * Packer, every nested one. The hook is what records coverage; with coverage
 * off (`npm test`) it only costs: a `boxsig --version` took 0.73 s of CPU
 * with it and 0.31 s without. This listener runs after tap's (spawn hooks
 * run in order) and takes the hook out of the child's NODE_OPTIONS again
 * when tap says coverage is off; `npm run coverage` keeps it.
 */
const HOOK = /@tapjs[\\/]processinfo[\\/]/;

if (process.env._TAPJS_PROCESSINFO_COVERAGE_ === '0') {
  // process-on-spawn's documented singleton, which tap's hook registered with
  const state = globalThis[Symbol.for('process-on-spawn@*:singletonId')];
  state?.listeners.push((child) => {
    const options = child.env.NODE_OPTIONS;
    if (typeof options !== 'string' || !HOOK.test(options)) return;
    const kept = options
      .split(/\s+/)
      .filter((o) => o && !HOOK.test(o))
      .join(' ');
    const env = { ...child.env };
    if (kept) env.NODE_OPTIONS = kept;
    else delete env.NODE_OPTIONS;
    for (const k of Object.keys(env)) if (k.startsWith('_TAPJS_PROCESSINFO_')) delete env[k];
    child.env = env;
  });
}
