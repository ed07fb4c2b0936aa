import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { classify, EXIT, EXIT_CODES_HELP, usageError } from './cli.errors.js';
import type { CliIo, CommandContext, CommandDefinition, OptionSpec } from './cli-command.js';
import { deriveCommand } from './commands/derive.command.js';
import { keysExportPublicCommand } from './commands/keys-export-public.command.js';
import { keysListCommand } from './commands/keys-list.command.js';
import { keysRotateCommand } from './commands/keys-rotate.command.js';
import { keysDestroyCommand, keysRestoreCommand, keysRetireCommand } from './commands/keys-state.commands.js';
import { masterRewrapCommand } from './commands/master-rewrap.command.js';
import { reencryptCommand } from './commands/reencrypt.command.js';
import {
  createKeyStore,
  describeKeyStore,
  encryptionOptions,
  ENVIRONMENT_HELP,
  loadCliConfig,
} from './config/cli-config.js';
import { colorsEnabled, makeStyle } from './output/terminal.js';

export const PROGRAM = 'nestjs-encryption';

export const COMMANDS: readonly CommandDefinition[] = [
  keysListCommand,
  keysRotateCommand,
  keysRetireCommand,
  keysRestoreCommand,
  keysDestroyCommand,
  keysExportPublicCommand,
  masterRewrapCommand,
  deriveCommand,
  reencryptCommand,
];

const GROUPS: Record<string, string> = {
  keys: 'Inspect and manage the data keys of the ring',
  master: 'Manage the master key that wraps the data keys',
};

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print the result as JSON (errors as JSON on stderr)' },
  'state-dir': {
    type: 'string',
    placeholder: 'dir',
    description: 'where scans and checkpoints are kept (default $NESTJS_ENCRYPTION_STATE_DIR or .nestjs-encryption)',
  },
  verbose: { type: 'boolean', description: 'log what the library does (audit records) to stderr' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
};

/** Runs one command line; resolves to the exit status. Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const errStyle = makeStyle(colorsEnabled(io.stderr, io.env));
  const json = argv.includes('--json');
  try {
    return await dispatch(argv, io);
  } catch (error) {
    const { exitCode, code, message } = classify(error);
    if (json) {
      io.stderr.write(JSON.stringify({ error: { code, message, exitCode } }) + '\n');
    } else {
      io.stderr.write(`${errStyle.red('error:')} ${message}\n`);
      if (exitCode === EXIT.USAGE && code === 'USAGE') {
        const { command } = findCommand(argv.filter((arg) => !arg.startsWith('-')).slice(0, 2));
        io.stderr.write(`Run '${PROGRAM} ${command ? `${command.name} ` : ''}--help' for usage.\n`);
      }
    }
    return exitCode;
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const words: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith('-')) break;
    words.push(arg);
  }
  const rest = argv.slice(words.length);
  if (words.length === 0) {
    if (rest.includes('--version')) {
      io.stdout.write(`${libraryVersion()}\n`);
      return EXIT.OK;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(mainHelp());
      return EXIT.OK;
    }
    io.stderr.write(mainHelp());
    return EXIT.USAGE;
  }
  if (words[0] === 'help') {
    const target = findCommand(words.slice(1));
    if (target.command) io.stdout.write(commandHelp(target.command));
    else if (words[1] && GROUPS[words[1]]) io.stdout.write(groupHelp(words[1]));
    else if (words.length === 1) io.stdout.write(mainHelp());
    else throw usageError(`Unknown command: ${words.slice(1).join(' ')}`);
    return EXIT.OK;
  }
  const { command, used } = findCommand(words);
  if (!command) {
    if (GROUPS[words[0]] && words.length === 1) {
      const wantsHelp = rest.includes('--help') || rest.includes('-h');
      (wantsHelp ? io.stdout : io.stderr).write(groupHelp(words[0]));
      return wantsHelp ? EXIT.OK : EXIT.USAGE;
    }
    throw usageError(`Unknown command: ${words.join(' ')}`);
  }

  let parsed;
  try {
    parsed = parseArgs({
      args: [...words.slice(used), ...rest],
      options: { ...toParseArgs(command.options ?? {}), ...toParseArgs(GLOBAL_OPTIONS) },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usageError(parseArgsMessage(error as Error & { code?: string }, command));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(commandHelp(command));
    return EXIT.OK;
  }
  const expected = command.args?.length ?? 0;
  if (positionals.length !== expected) {
    throw usageError(
      expected === 0
        ? `${command.name} takes no arguments (got ${positionals.join(' ')})`
        : `${command.name} needs ${command.args!.map((arg) => arg.name).join(' ')}`,
    );
  }
  return command.run(makeContext(io, values, positionals));
}

function makeContext(
  io: CliIo,
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
): CommandContext {
  const json = values.json === true;
  const verbose = values.verbose === true;
  const stateDir = resolve(
    (values['state-dir'] as string | undefined) ?? io.env.NESTJS_ENCRYPTION_STATE_DIR ?? '.nestjs-encryption',
  );
  const context: CommandContext = {
    io,
    values,
    positionals,
    json,
    style: makeStyle(colorsEnabled(io.stdout, io.env)),
    stateDir,
    print: (text) => io.stdout.write(text),
    printJson: (value) => io.stdout.write(JSON.stringify(value, null, 2) + '\n'),
    notice: (text) => {
      if (!json) io.stderr.write(`${text}\n`);
    },
    async withServices(work, boot = {}) {
      // Nest and the library load only for commands that run: help and usage errors stay instant.
      const { withEncryption } = await import('./config/encryption-context.js');
      if (boot.standalone) {
        const { InMemoryKeyStore } = await import('nestjs-encryption');
        const keyStore = new InMemoryKeyStore();
        return withEncryption(
          {
            keyStore,
            location: 'in-memory store',
            verbose,
            stderr: io.stderr,
            options: { keyStore, enableAsymmetric: false, ...boot.options },
          },
          (services) => work({ ...services, location: 'in-memory store' }),
        );
      }
      const config = loadCliConfig(io.env);
      const location = describeKeyStore(config);
      const keyStore = await createKeyStore(config);
      return withEncryption(
        { keyStore, location, verbose, stderr: io.stderr, options: encryptionOptions(config, keyStore, boot.options) },
        (services) => work({ ...services, location }),
      );
    },
  };
  return context;
}

/** Node's parseArgs messages, shortened to what an operator needs. */
function parseArgsMessage(error: Error & { code?: string }, command: CommandDefinition): string {
  const quoted = /'([^']+)'/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `Unknown option ${quoted ?? ''} for ${command.name}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = quoted?.split(' ')[0] ?? '';
      return error.message.includes('does not take an argument')
        ? `Option ${name} takes no value`
        : `Option ${name} needs a value`;
    }
    default:
      return error.message.split('\n')[0];
  }
}

function findCommand(words: string[]): { command?: CommandDefinition; used: number } {
  for (let used = Math.min(words.length, 2); used > 0; used--) {
    const name = words.slice(0, used).join(' ');
    const command = COMMANDS.find((candidate) => candidate.name === name);
    if (command) return { command, used };
  }
  return { used: 0 };
}

function toParseArgs(options: Record<string, OptionSpec>) {
  return Object.fromEntries(
    Object.entries(options).map(([name, spec]) => [
      name,
      spec.short ? { type: spec.type, short: spec.short } : { type: spec.type },
    ]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
}

function optionLines(options: Record<string, OptionSpec>): string {
  const labels = Object.entries(options).map(([name, spec]) => [
    `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.placeholder ? ` <${spec.placeholder}>` : ''}`,
    spec.description,
  ]);
  const width = Math.max(...labels.map(([label]) => label.length)) + 2;
  return labels.map(([label, description]) => `  ${label.padEnd(width)}${description}`).join('\n');
}

function usageLine(command: CommandDefinition): string {
  const args = command.args?.map((arg) => ` ${arg.name}`).join('') ?? '';
  return `${PROGRAM} ${command.name}${args} [options]`;
}

export function commandHelp(command: CommandDefinition): string {
  const sections = [`Usage: ${usageLine(command)}`, `${command.summary}.`, command.description];
  if (command.args?.length)
    sections.push(`Arguments:\n${command.args.map((arg) => `  ${arg.name}  ${arg.description}`).join('\n')}`);
  if (command.options && Object.keys(command.options).length)
    sections.push(`Options:\n${optionLines(command.options)}`);
  sections.push(`Global options:\n${optionLines(GLOBAL_OPTIONS)}`);
  if (command.examples?.length)
    sections.push(`Examples:\n${command.examples.map((example) => `  ${example}`).join('\n')}`);
  if (command.usesKeyStore) sections.push(ENVIRONMENT_HELP);
  sections.push(EXIT_CODES_HELP);
  return sections.join('\n\n') + '\n';
}

function groupHelp(group: string): string {
  const commands = COMMANDS.filter((command) => command.name.startsWith(`${group} `));
  const width = Math.max(...commands.map((command) => command.name.length)) + 2;
  return (
    [
      `Usage: ${PROGRAM} ${group} <command> [options]`,
      `${GROUPS[group]}.`,
      `Commands:\n${commands.map((command) => `  ${command.name.padEnd(width)}${command.summary}`).join('\n')}`,
      `Run '${PROGRAM} ${group} <command> --help' for a command's options.`,
    ].join('\n\n') + '\n'
  );
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return (
    [
      `Usage: ${PROGRAM} <command> [options]`,
      'Operate the key ring of nestjs-encryption with the same configuration as the application.',
      `Commands:\n${COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`).join('\n')}`,
      `Global options:\n${optionLines({ ...GLOBAL_OPTIONS, version: { type: 'boolean', description: 'print the version' } })}`,
      `Run '${PROGRAM} <command> --help' (or '${PROGRAM} help <command>') for a command's options and examples.`,
      ENVIRONMENT_HELP,
      EXIT_CODES_HELP,
    ].join('\n\n') + '\n'
  );
}

function libraryVersion(): string {
  return (createRequire(import.meta.url)('nestjs-encryption/package.json') as { version: string }).version;
}
