import { execFileSync } from 'node:child_process';

/**
 * The interpreter for interoperability tests. Debian's python3 is used explicitly because the
 * `python3` on PATH may be a pyenv build without the distro's `python3-cryptography` package.
 */
export const PYTHON = process.env.INTEROP_PYTHON ?? '/usr/bin/python3';

/** The CI step that provides the Python side of the interoperability tests. */
export const PYTHON_CRYPTOGRAPHY_INSTALL = 'apt-get update && apt-get install -y python3-cryptography';

/**
 * Runs `script` with `input` as JSON on stdin and parses its stdout as JSON. Any failure of the
 * interpreter (missing module, exception) fails the calling test with Python's stderr.
 */
export function runPython<T>(script: string, input: unknown): T {
  let stdout: string;
  try {
    stdout = execFileSync(PYTHON, ['-c', script], {
      input: JSON.stringify(input),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    const { stderr, status } = error as { stderr?: string; status?: number | null };
    throw new Error(`${PYTHON} exited with status ${status ?? 'unknown'}:\n${stderr ?? String(error)}`);
  }
  return JSON.parse(stdout) as T;
}
