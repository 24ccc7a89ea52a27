// The operator CLI in a process of its own (`node bin/openrush.js …`), with only the environment an operator sets.
import { type ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { freePort } from './prism.ts';

const ROOT = resolve(import.meta.dirname, '../..');
export const KEY = /or_[0-9A-Za-z]{38}/;
export const ACCOUNT_ID = /acct_[0-9A-HJKMNP-TV-Z]{26}/;

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  exited: Promise<CliRun>;
}

const children: ChildProcess[] = [];

export function startCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, ['bin/openrush.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<CliRun>((done) => child.on('close', (code, signal) => done({ code, signal, ...output })));
  return { child, output, exited };
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> {
  const started = startCli(args, env);
  const timer = setTimeout(() => started.child.kill('SIGKILL'), timeoutMs);
  return started.exited.finally(() => clearTimeout(timer));
}

/** A failed test must not leave a server running: call from afterEach / afterAll. */
export function killCliProcesses(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface ServingCli extends CliProcess {
  url: string;
  /** The starter account's key and id, printed once on an empty database. */
  starterKey: string | undefined;
  starterAccountId: string | undefined;
}

/** Starts `openrush serve` on a free port and waits (bounded) until it answers /healthz and has said it listens. */
export async function serveCli(env: Record<string, string>, timeoutMs = 20_000): Promise<ServingCli> {
  const port = await freePort();
  const started = startCli(['serve'], { LOG_LEVEL: 'info', ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (started.child.exitCode !== null) throw new Error(`serve exited early (${started.child.exitCode}): ${started.output.stderr}`);
    const healthy = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
    // The starter banner is written before the server listens, the "listening" log line after.
    if (healthy && started.output.stdout.includes('openrush listening')) break;
    if (Date.now() > deadline) throw new Error(`serve never became healthy: ${started.output.stdout}${started.output.stderr}`);
    await new Promise((done) => setTimeout(done, 100));
  }
  const banner = started.output.stdout.split('\n').filter((line) => !line.startsWith('{')).join('\n');
  return { ...started, url, starterKey: KEY.exec(banner)?.[0], starterAccountId: ACCOUNT_ID.exec(banner)?.[0] };
}
