import type { EncryptionContext } from 'nestjs-encryption';

import { usageError } from '../cli.errors.js';

const PLACEHOLDER = /\{([A-Za-z0-9_.$-]+)\}/g;

/**
 * The encryption context of each value, from `--context-template`: a JSON object of strings
 * (`{"record":"{id}","field":"{column}"}`) gives an object context, anything else a string context
 * (`customer:{id}`). `{column}` (or `{field}`) is the column or field being re-encrypted; any other
 * `{name}` is that column of the row, or that (dotted) field of the JSON line.
 */
export class ContextTemplate {
  private constructor(
    private readonly parts: string | Record<string, string>,
    /** Names the template reads from the row or line (not `column`/`field`). */
    readonly references: string[],
  ) {}

  static parse(text: string): ContextTemplate {
    let parts: string | Record<string, string> = text;
    if (text.trimStart().startsWith('{"') || text.trim() === '{}') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw usageError('--context-template looks like JSON but is not valid JSON');
      }
      if (
        !parsed ||
        typeof parsed !== 'object' ||
        Array.isArray(parsed) ||
        !Object.values(parsed).every((v) => typeof v === 'string')
      ) {
        throw usageError('--context-template as JSON must be an object of strings');
      }
      parts = parsed as Record<string, string>;
    }
    const texts = typeof parts === 'string' ? [parts] : Object.values(parts);
    const names = new Set(texts.flatMap((part) => [...part.matchAll(PLACEHOLDER)].map((match) => match[1])));
    if (names.size === 0 && texts.join('') === '') throw usageError('--context-template is empty');
    return new ContextTemplate(
      parts,
      [...names].filter((name) => name !== 'column' && name !== 'field'),
    );
  }

  /**
   * The context for one value. `lookup` gives a referenced value as text, or `undefined` when the row
   * or line has none (the value then can't be decrypted and is reported, not guessed).
   */
  render(
    column: string,
    lookup: (name: string) => string | undefined,
  ): { context: EncryptionContext } | { missing: string } {
    let missing: string | undefined;
    const fill = (part: string) =>
      part.replace(PLACEHOLDER, (_, name: string) => {
        if (name === 'column' || name === 'field') return column;
        const value = lookup(name);
        if (value === undefined) missing ??= name;
        return value ?? '';
      });
    const context =
      typeof this.parts === 'string'
        ? fill(this.parts)
        : Object.fromEntries(Object.entries(this.parts).map(([k, v]) => [k, fill(v)]));
    return missing === undefined ? { context } : { missing };
  }
}
