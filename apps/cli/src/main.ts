#!/usr/bin/env node
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
process.exitCode = code;
// A driver's idle timer or socket must not keep a finished command alive (stdout/stderr are already written).
setTimeout(() => process.exit(code), 2000).unref();
