import { CliError } from '../cli.errors.js';
import { ContextTemplate } from './context-template.js';

describe('ContextTemplate', () => {
  const row: Record<string, string> = { id: '42', tenant: 'acme' };
  const lookup = (name: string) => row[name];

  it("gives an object context from a JSON object of strings, {column} being the value's column", () => {
    const template = ContextTemplate.parse('{"record":"{id}","field":"{column}","tenant":"t-{tenant}"}');
    expect(template.references.sort()).toEqual(['id', 'tenant']);
    expect(template.render('email', lookup)).toEqual({ context: { record: '42', field: 'email', tenant: 't-acme' } });
  });

  it('gives a string context from anything else; {field} is a synonym of {column}', () => {
    const template = ContextTemplate.parse('customer:{id}/{field}');
    expect(template.references).toEqual(['id']);
    expect(template.render('card.number', lookup)).toEqual({ context: 'customer:42/card.number' });
  });

  it('names the first missing reference instead of guessing', () => {
    expect(ContextTemplate.parse('{region}/{id}').render('email', lookup)).toEqual({ missing: 'region' });
  });

  it('rejects JSON that is not an object of strings, and an empty template', () => {
    for (const text of ['{"a":1}', '{"a":"x"', '']) expect(() => ContextTemplate.parse(text)).toThrow(CliError);
  });
});
