/**
 * The worker entry: the pool (threads/pool.ts) starts each worker on this module's compiled
 * twin. It sits above both backends so that the pool itself imports no kernel: it hands the
 * merged task table (tasks.ts) to the worker's job loop.
 */
import { TASKS } from './tasks.js';
import { serveJobs } from './threads/serve.js';

serveJobs(TASKS);
