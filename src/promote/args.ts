import { usageError } from '../errors.js';

/** A version number from the command line: digits only, from 1. */
export function parseVersionArg(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw usageError(`invalid version ${JSON.stringify(text)}: versions are integers from 1`);
  return Number(text);
}
