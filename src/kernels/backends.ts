/**
 * The backend registry with nmgrad's built-in backends loaded. Everything above src/kernels
 * imports the seam from here, so the registry is never observed empty. A new built-in backend
 * registers itself by adding its import below.
 */
import './js/backend.js';
import './wasm/backend.js';

export { backendByName, defaultBackendName, describeBackend, getBackend, listBackends, registerBackend, setBackend, withBackend, withFallback, type Backend, type NMWeight, type BinaryOp, type UnaryOp } from './backend.js';
