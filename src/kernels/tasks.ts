/**
 * Every task a worker can run: the tables of the js and wasm backends and the pool's fault
 * tasks (its tests), merged. The worker entry (worker.ts) serves this table; a backend's
 * dispatch passes its own table to the pool, whose tasks are the same functions under the
 * same names here, so a task is found by the same key on every thread. Two tables naming
 * one task differently would make this module throw when it loads.
 */
import { JS_TASKS } from './js/tasks.js';
import { FAULT_TASKS } from './threads/faults.js';
import { dispatchRows } from './threads/pool.js';
import { WASM_TASKS } from './wasm/tasks.js';

const TABLES = [JS_TASKS, WASM_TASKS, FAULT_TASKS];
export const TASKS = { ...JS_TASKS, ...WASM_TASKS, ...FAULT_TASKS };
if (Object.keys(TASKS).length !== TABLES.reduce((n, t) => n + Object.keys(t).length, 0)) {
  throw new Error(`two task tables share a task name: ${TABLES.flatMap((t) => Object.keys(t)).sort().join(', ')}`);
}

export type TaskName = keyof typeof TASKS;
export type TaskArgs<K extends TaskName> = Parameters<(typeof TASKS)[K]>[0];

/** Runs any task by name (tests and benchmarks; a backend dispatches through its own table). */
export function parallelRows<K extends TaskName>(task: K, args: TaskArgs<K>, rows: number, align: number, cost: number): void {
  dispatchRows(TASKS, task, args, rows, align, cost);
}
