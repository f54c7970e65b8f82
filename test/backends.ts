import { afterAll, beforeAll, describe } from 'vitest';
import { getBackend, listBackends, setBackend } from '../src/kernels/backends.js';

/**
 * Runs `body` once per registered backend, with that backend active: a backend registered
 * before the tests load (e.g. by its module's import in src/kernels/backends.ts) is tested by
 * every kernel and op suite written with this helper.
 */
export function describeEachBackend(title: string, body: (backend: string) => void): void {
  describe.each(listBackends())(`${title} [%s backend]`, (name) => {
    let previous = 'js';
    beforeAll(() => {
      previous = getBackend().name;
      setBackend(name);
    });
    afterAll(() => setBackend(previous));
    body(name);
  });
}
