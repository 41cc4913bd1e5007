import type { Command } from '../cli/context.js';
import { ModelgateError } from '../errors.js';

export const run: Command = async () => {
  throw new ModelgateError('E_NOT_READY', 'modelgate sync is being built', 1);
};
