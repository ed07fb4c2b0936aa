import type { CommandDefinition } from '../cli-command.js';
import { ago, formatCount, formatDuration, renderTable } from '../output/terminal.js';
import { dataUsageOf, ScanLedger } from '../state/scan-ledger.js';
import { keyJson, keyRow, styledState } from './key-view.js';

export const keysListCommand: CommandDefinition = {
  name: 'keys list',
  summary: 'List the keys: ids, states, ages, usage, and which scanned data still needs them',
  description: `Lists every key of the ring, newest first: id, version, state, age, encryptions and decryptions
counted across instances, last use, and what the latest re-encryption scans found (DATA column):
  "N values in <source> (<time> ago)"   ciphertexts in scanned sources still use the key
  "no values in N scanned sources"      no scanned source uses it: safe to retire, then destroy
  "... last scanned while this key could still encrypt" / "no source scanned yet"
Scans are recorded by \`reencrypt\` (and \`reencrypt --dry-run\`) in the state directory.
Key bytes are never printed.`,
  usesKeyStore: true,
  examples: [
    'nestjs-encryption keys list',
    'nestjs-encryption keys list --json | jq \'.keys[] | select(.data.status == "unused") | .id\'',
  ],
  async run(context) {
    const scans = await new ScanLedger(context.stateDir).all();
    return context.withServices(async ({ keys, location }) => {
      const list = keys.listKeys();
      const pairs = keys.listKeyPairs();
      const rows = list.map((key) => ({ key, data: dataUsageOf(key, scans) }));
      if (context.json) {
        context.printJson({
          store: location,
          revision: keys.revision,
          activeKeyId: keys.activeKey.id,
          keys: rows.map(({ key, data }) => keyJson(key, data)),
          keyPairs: pairs.map((pair) => ({ ...pair, createdAt: pair.createdAt.toISOString() })),
          scans: scans.map((scan) => ({
            source: scan.source,
            kind: scan.kind,
            finishedAt: scan.finishedAt,
            dryRun: scan.dryRun,
            values: scan.values,
            activeKeyId: scan.activeKeyId,
          })),
        });
        return 0;
      }
      const { style } = context;
      context.print(`Key ring in ${location}, revision ${keys.revision}\n\n`);
      context.print(
        renderTable(
          ['ID', 'VERSION', 'STATE', 'AGE', 'ENCRYPTIONS', 'DECRYPTIONS', 'LAST USED', 'DATA'],
          rows.map(({ key, data }) => keyRow(key, data, style)),
          { numeric: [false, true, false, false, true, true, false, false], style },
        ),
      );
      if (pairs.length) {
        context.print('\nKey pairs (asymmetric encryption; public keys: keys export-public)\n');
        context.print(
          renderTable(
            ['KID', 'ALGORITHM', 'STATE', 'AGE'],
            pairs.map((pair) => [
              pair.kid,
              pair.alg + (pair.rsaKeySize ? ` ${pair.rsaKeySize}` : pair.crv ? ` ${pair.crv}` : ''),
              styledState(pair.state, style),
              formatDuration(pair.ageMs),
            ]),
            { style },
          ),
        );
      }
      if (scans.length) {
        context.print(`\nScanned sources:\n`);
        for (const scan of scans) {
          context.print(
            `  ${scan.source}: ${formatCount(scan.values)} values, ${ago(scan.finishedAt)}${scan.dryRun ? ' (dry run)' : ''}\n`,
          );
        }
      }
      const retirable = rows.filter(({ key, data }) => key.state === 'decrypt-only' && data.status === 'unused');
      if (retirable.length) {
        context.print(
          `\n${style.green('No scanned source uses')}: ${retirable.map(({ key }) => key.id).join(', ')} (nestjs-encryption keys retire <id>)\n`,
        );
      }
      return 0;
    });
  },
};
