import { trainMlp } from './train.js';

const t0 = performance.now();
const r = trainMlp({ log: (line) => console.log(line) });
console.log(`moons MLP: loss ${r.initialLoss.toFixed(4)} -> ${r.finalLoss.toFixed(4)}, accuracy ${(100 * r.accuracy).toFixed(1)}% after ${r.steps} steps (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
