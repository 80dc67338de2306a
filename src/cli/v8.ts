/**
 * Garbage-collector tuning for the `boxsig` process (imported first by the
 * CLI; the library never changes flags of a VM it does not own).
 *
 * A streaming pass allocates about 1.5 GB of short-lived 1 MiB buffers for a
 * 1 GiB disk image (file reads and inflated chunks). With the CLI's ~9 MB
 * heap just above V8's activation threshold, every scavenge then started an
 * incremental mark-compact: 55 of them for a 1 GiB add, about 20% of the CPU
 * on V8's helper threads, on a heap that never grew. Without incremental
 * marking the buffers still die young and are freed by scavenges, and a full
 * collection runs only when the old generation really fills up (once per add
 * in practice). Measured (docs/BENCHMARKS.md): a 1 GiB add on 2 cores took
 * 2.41–2.67 s instead of 3.07–3.31 s, with the same peak RSS.
 * BOXSIG_V8_DEFAULTS=1 keeps V8's defaults (to compare).
 */
import v8 from 'node:v8';

if (process.env.BOXSIG_V8_DEFAULTS !== '1') v8.setFlagsFromString('--no-incremental-marking');
