import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { EOL } from 'node:os';

/**
 * The few GitHub Actions runner commands the Action speaks (inputs, outputs, annotations, the
 * step summary), written as the runner reads them, in the format of `@actions/core`: that
 * package brings an HTTP client (undici, 790 KB) the Action never uses, compiled at every start.
 */

/** Where an annotation points; `title` heads it. */
export interface AnnotationProperties {
  title?: string;
  file?: string;
  startLine?: number;
  startColumn?: number;
}

/** The input `name` (`INPUT_<NAME>`), trimmed; '' when unset. */
export function getInput(name: string): string {
  return (process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '').trim();
}

/** Sets the step output `name` (the `GITHUB_OUTPUT` file, under a delimiter the value cannot hold). */
export function setOutput(name: string, value: string): void {
  const file = process.env.GITHUB_OUTPUT;
  if (!file) {
    process.stdout.write(`${EOL}::set-output name=${escapeProperty(name)}::${escapeData(value)}${EOL}`);
    return;
  }
  const delimiter = `ghadelimiter_${randomUUID()}`;
  appendFileSync(file, `${name}<<${delimiter}${EOL}${value}${EOL}${delimiter}${EOL}`, 'utf8');
}

/** An error annotation, and the step fails (exit code 1). */
export function setFailed(message: string): void {
  process.exitCode = 1;
  error(message);
}

export function error(message: string, properties: AnnotationProperties = {}): void {
  command('error', message, properties);
}

export function warning(message: string, properties: AnnotationProperties = {}): void {
  command('warning', message, properties);
}

export function info(message: string): void {
  process.stdout.write(message + EOL);
}

/** Appends `markdown` to the step summary (`GITHUB_STEP_SUMMARY`), when the runner gives one. */
export async function appendSummary(markdown: string): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (file) await appendFile(file, markdown + EOL, 'utf8');
}

function command(name: string, message: string, p: AnnotationProperties): void {
  const props: Array<[string, string | number | undefined]> = [
    ['title', p.title],
    ['file', p.file],
    ['line', p.startLine],
    ['col', p.startColumn],
  ];
  const given = props.filter(([, v]) => v !== undefined && v !== '' && v !== 0).map(([k, v]) => `${k}=${escapeProperty(String(v))}`);
  process.stdout.write(`::${name}${given.length ? ' ' + given.join(',') : ''}::${escapeData(message)}${EOL}`);
}

const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
