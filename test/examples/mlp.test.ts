import { describe, expect, it } from 'vitest';
import { trainMlp } from '../../examples/mlp/train.js';

describe('examples/mlp', () => {
  it('learns the moons problem: loss below 0.05 and accuracy above 97%', () => {
    const r = trainMlp({ seed: 0, steps: 300 });
    expect(r.initialLoss).toBeGreaterThan(0.3);
    expect(r.finalLoss).toBeLessThan(0.05);
    expect(r.accuracy).toBeGreaterThan(0.97);
  });

  it('is reproducible from the seed', () => {
    expect(trainMlp({ seed: 3, steps: 40 })).toEqual(trainMlp({ seed: 3, steps: 40 }));
  });
});
