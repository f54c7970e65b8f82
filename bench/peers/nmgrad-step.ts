/**
 * One nmgrad training step in a process of its own, for the peers suite's peak-memory figure:
 * `node dist/bench/peers/nmgrad-step.js --preset small|base|tiny [--variant dense|1:8|1:8 all]
 * [--threads N] [--backend wasm] [--steps N]`. Builds the model, warms up, times `steps` steps
 * and prints one JSON line (median_ms, params, vm_hwm_mb: the process's own peak RSS).
 */
import { readFileSync } from 'node:fs';
import { listBackends, setBackend } from '../../src/index.js';
import { setThreads } from '../../src/kernels/threads/pool.js';
import { STEP_PRESETS, makeStep, syntheticBatch, turn, warmUp, type StepPresetName, type StepVariant } from '../step-builder.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** VmRSS / VmHWM of this process in MiB, or null where /proc is absent. */
function statusMb(field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
async function main(): Promise<void> {
  const presetName = flag('preset', 'small');
  if (!(presetName in STEP_PRESETS)) throw new Error(`--preset must be one of ${Object.keys(STEP_PRESETS).join(', ')}, got '${presetName}'`);
  const preset = STEP_PRESETS[presetName as StepPresetName];
  const variant = flag('variant', 'dense');
  if (!['dense', '1:8', '1:8 all'].includes(variant)) throw new Error(`--variant must be dense, 1:8 or '1:8 all', got '${variant}'`);
  const backend = flag('backend', 'wasm');
  if (!listBackends().includes(backend)) throw new Error(`backend '${backend}' is not available here (${listBackends().join(', ')})`);
  const steps = Number(flag('steps', '5'));
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`--steps must be a positive integer, got '${flag('steps', '')}'`);
  setThreads(Number(flag('threads', '2')));
  setBackend(backend);
  const rssAfterImport = statusMb('VmRSS');
  const { step, model } = makeStep(preset, variant as StepVariant, syntheticBatch(preset));
  await warmUp(step);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
    await turn();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  console.log(JSON.stringify({ median_ms: median, times_ms: times, params: model.numParameters(), rss_after_import_mb: rssAfterImport, vm_hwm_mb: statusMb('VmHWM') }));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`nmgrad-step: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
