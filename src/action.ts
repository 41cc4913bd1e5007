// The Action's entry point: everything happens in run(), which catches once.
import { run } from './action/main.js';

await run();
