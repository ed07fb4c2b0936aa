import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
}

/** The environment a CLI child starts from: nothing of this process's configuration leaks in. */
function childEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env };
}

/** Runs the built CLI (through its shebang) to completion. */
export function runCli(main: string, args: string[], options: CliOptions = {}): Promise<CliRun> {
  const child = startCli(main, args, options);
  return child.done;
}

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliRun>;
  /** Resolves with the first stderr line matching `predicate` (a progress line, say). */
  waitForStderrLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

export function startCli(main: string, args: string[], options: CliOptions = {}): RunningCli {
  const child = spawn(main, args, { cwd: options.cwd, env: childEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const waiters: { predicate: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stdin!.end(options.input ?? '');
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    waitForStderrLine(predicate, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching stderr line within ${timeoutMs} ms; stderr:\n${stderr}`)),
          timeoutMs,
        );
        const waiter = {
          predicate,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        void done.then(() => {
          if (waiters.includes(waiter)) {
            clearTimeout(timer);
            reject(new Error(`the CLI exited before a matching stderr line; stderr:\n${stderr}`));
          }
        });
      });
    },
  };
}

/** The `--json` error object a failed command writes to stderr. */
export function jsonError(run: CliRun): { code: string; message: string; exitCode: number } {
  const line = run.stderr.trim().split('\n').pop()!;
  return (JSON.parse(line) as { error: { code: string; message: string; exitCode: number } }).error;
}
