import type { EncryptionModuleOptions } from 'nestjs-encryption';

import type { EncryptionServices } from './config/encryption-context.js';
import type { Style } from './output/terminal.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  env: NodeJS.ProcessEnv;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Shown in help as `--name <placeholder>`. */
  placeholder?: string;
  description: string;
}

/** One command: its help is built from these fields, so every command has a complete `--help`. */
export interface CommandDefinition {
  /** Words that select it: `keys list`. */
  name: string;
  summary: string;
  /** Arguments after the name in the usage line: `<id>`. */
  args?: { name: string; description: string }[];
  description: string;
  options?: Record<string, OptionSpec>;
  examples?: string[];
  /** Whether it reads the key store (its help then lists the environment). */
  usesKeyStore: boolean;
  run(context: CommandContext): Promise<number>;
}

export interface CommandContext {
  io: CliIo;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  json: boolean;
  /** Styling for stdout (colours only on a terminal). */
  style: Style;
  stateDir: string;
  /** Writes the command's result to stdout. */
  print(text: string): void;
  /** Writes JSON (the `--json` result) to stdout. */
  printJson(value: unknown): void;
  /** Informational line on stderr (suppressed by `--json`). */
  notice(text: string): void;
  /**
   * Boots the library with the configured store and master key, runs `work`, shuts it down. `standalone`
   * boots on a throwaway in-memory ring instead, for work that needs no stored keys.
   */
  withServices<T>(
    work: (services: EncryptionServices & { location: string }) => Promise<T>,
    boot?: { standalone?: boolean; options?: EncryptionModuleOptions },
  ): Promise<T>;
}
