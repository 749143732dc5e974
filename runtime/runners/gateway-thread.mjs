// The worker thread of ./gateway-source.ts: TypeScript runs through tsx's loader (as in bin/vigil.js), then the
// thread's body (./gateway-thread.ts) runs the gateway and the fleet.
import { register } from 'tsx/esm/api';

register();
await import('./gateway-thread.ts');
