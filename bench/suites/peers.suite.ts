import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { renderBarChartSvg } from '../chart.js';
import { createEncryptionApp } from '../encryption-app.js';
import { REPO_ROOT } from '../environment.js';
import type { Measurement, MeasureOptions } from '../harness.js';
import { measure, median } from '../harness.js';
import { benchmarkPayloads } from '../payloads.js';
import type { Peer } from '../peers.js';
import { awsEncryptionSdk, bareNodeCrypto, checkPeer, cloak, cryptr, fernetJs, joseDir, nestjsEncryption } from '../peers.js';
import type { StreamChildResult } from '../stream-child.js';
import type { Suite, Table, TargetCheck } from '../suite.js';
import { formatMb, formatOps, formatRatio, formatSpread, target } from '../suite.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const STREAM_MIB = 64;
const STREAM_REPETITIONS = 2;
const STREAM_ROUNDS = 5;

const OURS_DEFAULT = 'nestjs-encryption, default config';
const OURS_NO_COMPRESSION = 'nestjs-encryption, enableCompression: false';
const AWS = '@aws-crypto/client-node (raw AES keyring)';

/** The peers in the order of the table and the chart. */
const PEER_PACKAGES = ['@aws-crypto/client-node', '@47ng/cloak', 'fernet', 'cryptr', 'jose'];

/**
 * The same payloads through bare node:crypto, this library and five peer libraries, in one run:
 * round trips per second, MB/s and the ratio to bare node:crypto, then a 64 MiB stream through the
 * libraries that stream, each in its own process for its memory peak. Writes docs/benchmarks.svg.
 */
export const peersSuite: Suite = {
  id: 'peers',
  title: 'Side by side: bare node:crypto, nestjs-encryption and peer libraries',
  async run({ measure: base, log }) {
    // Eight contenders per payload: fewer rounds keep the comparison within about two minutes.
    const options: MeasureOptions = { rounds: Math.min(base.rounds, 6), roundMs: base.roundMs, warmupMs: base.warmupMs };
    const versions = Object.fromEntries(PEER_PACKAGES.map((name) => [name, packageVersion(name)]));
    const defaults = await createEncryptionApp({});
    const uncompressed = await createEncryptionApp({ enableCompression: false });
    const rows: string[][] = [];
    const targets: TargetCheck[] = [];
    const chartGroups: string[] = [];
    const chartValues = new Map<string, (number | undefined)[]>();
    try {
      for (const payload of benchmarkPayloads()) {
        log(`peers: ${payload.name}`);
        const peers: Peer[] = [
          bareNodeCrypto(payload),
          nestjsEncryption(OURS_DEFAULT, defaults.service, payload),
          nestjsEncryption(OURS_NO_COMPRESSION, uncompressed.service, payload),
          awsEncryptionSdk(payload, versions['@aws-crypto/client-node']),
          cloak(payload, versions['@47ng/cloak']),
          fernetJs(payload, versions.fernet),
          cryptr(payload, versions.cryptr),
          joseDir(payload, versions.jose),
        ];
        for (const peer of peers) await checkPeer(peer, payload);
        // Two groups, each with the baseline: the pure-JavaScript and key-derivation-heavy peers (hundreds of
        // milliseconds per call, heaps of garbage) would otherwise leave their GC work to whoever runs next.
        const slowNames = new Set([AWS, 'fernet', 'cryptr']);
        const groups = [
          peers.filter((peer, i) => i === 0 || !slowNames.has(peer.name)),
          peers.filter((peer, i) => i === 0 || slowNames.has(peer.name)),
        ];
        const measuredGroups: Measurement[] = [];
        for (const group of groups) {
          measuredGroups.push(
            await measure(
              group.map((peer) => ({ name: peer.name, run: () => peer.roundTrip(), bytesPerOp: payload.size })),
              options,
            ),
          );
        }
        /** A peer's result and its ratios to the baseline measured in the same group. */
        const stats = (name: string) => {
          const g = slowNames.has(name) ? 1 : 0;
          const index = groups[g].findIndex((peer) => peer.name === name);
          const measured = measuredGroups[g];
          return {
            result: measured.results[index],
            cpu: index === 0 ? 1 : measured.ratio(index, 0, 'cpu'),
            wall: index === 0 ? 1 : measured.ratio(index, 0, 'wall'),
          };
        };
        /** `a / b` by CPU time: within a group the median of per-round ratios, across groups through the baseline. */
        const versus = (a: string, b: string) => {
          if (slowNames.has(a) === slowNames.has(b)) {
            const g = slowNames.has(a) ? 1 : 0;
            const ia = groups[g].findIndex((peer) => peer.name === a);
            const ib = groups[g].findIndex((peer) => peer.name === b);
            return measuredGroups[g].ratio(ia, ib, 'cpu');
          }
          return stats(a).cpu / stats(b).cpu;
        };
        peers.forEach((peer, i) => {
          const { result, cpu, wall } = stats(peer.name);
          rows.push([
            i === 0 ? `${payload.name} (${payload.size.toLocaleString('en-US')} B)` : '',
            result.name,
            formatOps(result.opsPerSec),
            formatMb(result.mbPerSec),
            formatSpread(result.spread('cpu')),
            formatRatio(cpu),
            formatRatio(wall),
          ]);
          if (!chartValues.has(result.name)) chartValues.set(result.name, []);
          chartValues.get(result.name)!.push(result.opsPerSec);
        });
        chartGroups.push(payload.name);

        if (payload.name === '1 KiB JSON') {
          for (const ours of [OURS_DEFAULT, OURS_NO_COMPRESSION]) {
            const label = ours.replace('nestjs-encryption, ', '');
            targets.push(target(`1 KiB JSON, ${label}: round trips/s vs @aws-crypto/client-node`, versus(ours, AWS), 2));
            const closest = Math.min(...peers.slice(3).map((peer) => versus(ours, peer.name)));
            targets.push(target(`1 KiB JSON, ${label}: round trips/s vs the fastest other peer`, closest, 1));
          }
        }
        if (payload.name === '1 MiB random bytes') {
          for (const ours of [OURS_DEFAULT, OURS_NO_COMPRESSION]) {
            const label = ours.replace('nestjs-encryption, ', '');
            targets.push(target(`1 MiB random, ${label}: round trips/s vs bare node:crypto`, stats(ours).cpu, 0.95));
          }
        }
      }
    } finally {
      await defaults.app.close();
      await uncompressed.app.close();
    }

    log(`peers: ${STREAM_MIB} MiB stream`);
    // Each contender in a fresh process, several times in turn, so machine noise hits all of them alike.
    const contenders = ['node:crypto', 'nestjs-encryption', 'aws'];
    const runs = new Map<string, StreamChildResult[]>(contenders.map((c) => [c, []]));
    for (let round = 0; round < STREAM_ROUNDS; round++) {
      for (const contender of contenders) runs.get(contender)!.push(await streamChild(contender));
    }
    const ratio = (contender: string, pick: (r: StreamChildResult) => number) =>
      median(runs.get(contender)!.map((r, round) => pick(runs.get('node:crypto')![round]) / pick(r)));
    const summary = (contender: string) => {
      const all = runs.get(contender)!;
      return {
        contender,
        seconds: median(all.map((r) => r.seconds)),
        mbPerSec: median(all.map((r) => r.mbPerSec)),
        cpuRatio: ratio(contender, (r) => r.cpuSeconds),
        wallRatio: ratio(contender, (r) => r.seconds),
        peakRssGrowth: Math.max(...all.map((r) => r.peakRssGrowth)),
        peakArrayBuffersGrowth: Math.max(...all.map((r) => r.peakArrayBuffersGrowth)),
      };
    };
    const streams = contenders.map(summary);
    const ourStream = streams[1];
    const streamNames: Record<string, string> = {
      'node:crypto': 'node:crypto AES-256-GCM (bare)',
      'nestjs-encryption': 'nestjs-encryption (createEncryptStream / createDecryptStream)',
      aws: `${AWS}: encryptStream / decryptStream`,
    };
    const streamTable: Table = {
      caption:
        `${STREAM_MIB} MiB stream: encrypt to a file, decrypt back; medians of ${STREAM_ROUNDS} processes per contender ` +
        `(${STREAM_REPETITIONS} timed round trips each); peaks are the highest of them`,
      headers: ['Contender', 'round trips/s', 'MB/s', 'vs bare (CPU)', 'vs bare (wall)', 'peak RSS growth', 'peak ArrayBuffer growth'],
      rows: streams.map((s) => [
        streamNames[s.contender],
        (1 / s.seconds).toFixed(2),
        formatMb(s.mbPerSec),
        formatRatio(s.cpuRatio),
        formatRatio(s.wallRatio),
        `${(s.peakRssGrowth / MiB).toFixed(1)} MiB`,
        `${(s.peakArrayBuffersGrowth / MiB).toFixed(1)} MiB`,
      ]),
    };
    targets.push(target(`${STREAM_MIB} MiB stream: nestjs-encryption throughput vs bare node:crypto (CPU time)`, ourStream.cpuRatio, 0.9));
    const peak = Math.max(ourStream.peakRssGrowth, ourStream.peakArrayBuffersGrowth);
    targets.push(target(`${STREAM_MIB} MiB stream: 64 MiB / nestjs-encryption's peak memory growth (${(peak / MiB).toFixed(1)} MiB)`, (64 * MiB) / peak, 1));

    chartGroups.push(`${STREAM_MIB} MiB stream`);
    const streamOps = new Map(streams.map((s) => [streamNames[s.contender], 1 / s.seconds]));
    const streamSeries: Record<string, string> = {
      'node:crypto AES-256-GCM (bare)': 'node:crypto AES-256-GCM (bare)',
      [OURS_DEFAULT]: streamNames['nestjs-encryption'],
      [AWS]: streamNames.aws,
    };
    for (const [name, values] of chartValues) values.push(streamSeries[name] ? streamOps.get(streamSeries[name]) : undefined);
    const svg = renderBarChartSvg({
      title: 'Encrypt + decrypt round trips per second (log scale)',
      subtitle: `Same payloads, same run, ${new Date().toISOString().slice(0, 10)}; bars per library, higher is better`,
      yLabel: 'round trips / s',
      groups: chartGroups,
      series: [...chartValues].map(([name, values]) => ({ name, values })),
    });

    return {
      description: [
        '![Round trips per second per payload and library](benchmarks.svg)',
        'Every contender encrypts and then decrypts the same payload and restores the value that went in (JSON parsed ' +
          'back, strings as strings, bytes as bytes); each one is checked once for a correct round trip before it is ' +
          'measured. Libraries that only take strings (cloak, fernet, cryptr) get JSON as its text and bytes as base64, ' +
          'and decode them again. The contenders of a payload take turns in the same rounds (bench/harness.ts), ' +
          `${options.rounds} rounds of ${options.roundMs} ms, in two groups that each include the baseline: the ` +
          'node:crypto-based ones, and the slow ones (@aws-crypto/client-node, fernet, cryptr), whose garbage would ' +
          "otherwise be collected on the fast ones' time; ratios across groups go through the baseline. " +
          'round trips/s and MB/s are wall-clock rates; the ratios ' +
          "are medians of per-round ratios, by this process's CPU time (all threads, so worker and zlib threads count) " +
          'and by the wall clock; targets are judged on CPU time, which other load on the machine disturbs least.',
        '*node:crypto AES-256-GCM (bare)*: a fresh 12-byte IV, `iv || ciphertext || tag`, no format, no key management. ' +
          `*${OURS_DEFAULT}*: \`EncryptionModule.forRoot({})\`, so payloads of at least 1 KiB are gzipped when that makes ` +
          'them smaller (a sample decides first for large ones, so the 1 MiB random payload skips gzip); no payload here ' +
          'reaches the worker pool threshold (4 MiB). ' +
          `*${OURS_NO_COMPRESSION}*: the same with compression off. ` +
          `*@aws-crypto/client-node* ${versions['@aws-crypto/client-node']}: \`buildClient(REQUIRE_ENCRYPT_REQUIRE_DECRYPT)\`, a ` +
          '`RawAesKeyringNode` (AES-256-GCM wrapping) and its default suite (key commitment, ECDSA P-384 signature). ' +
          `*@47ng/cloak* ${versions['@47ng/cloak']}: \`encryptStringSync\` / \`decryptStringSync\` with a parsed key (its fastest path). ` +
          `*fernet* ${versions.fernet}: \`Token.encode\` / \`decode\` (AES-128-CBC + HMAC in crypto-js). ` +
          `*cryptr* ${versions.cryptr}: its defaults, which derive a key with PBKDF2-SHA512 (100,000 iterations) for every ` +
          `message. *jose* ${versions.jose}: compact JWE, \`alg: dir\`, \`enc: A256GCM\`, with a KeyObject.`,
        `The ${STREAM_MIB} MiB stream runs each streaming contender in its own Node.js process (bench/stream-child.ts): ` +
          'it encrypts a generated stream to a temporary file and decrypts the file back to a sink, and samples the ' +
          "process's RSS and ArrayBuffer memory every 5 ms; the peaks are growth over the idle process after a GC. The bare " +
          "baseline is `createCipheriv`/`createDecipheriv` used as streams (one GCM tag for the whole stream, kept in " +
          'memory); nestjs-encryption uses its chunked format (1 MiB chunks by default, each with its own tag). cloak, ' +
          'fernet, cryptr and jose have no streaming API.',
      ],
      tables: [{ headers: ['Payload', 'Contender', 'round trips/s', 'MB/s', 'spread (CPU)', 'vs bare (CPU)', 'vs bare (wall)'], rows }, streamTable],
      targets,
      notes: [
        '**Compression in the default configuration.** With `compressionThreshold` at its default of 1024 bytes, the ' +
          "1 KiB document is gzipped on encryption and gunzipped on decryption; zlib's set-up for a 1 KiB input costs " +
          'several times the AES-GCM work, for a ciphertext about 80% smaller. That is where the default configuration ' +
          'loses to the uncompressed peers on 1 KiB. The 1 MiB random payload is probed first (a 3 KiB deflate sample, ' +
          'crypto/compression.ts) and, being incompressible, is not run through gzip. With `enableCompression: false` ' +
          '(or `compress: false` per call, or a higher `compressionThreshold`) the library does what the bare baseline ' +
          'does plus its header, key commitment check and AAD.',
        '**Streams.** nestjs-encryption seals every chunk (1 MiB by default) with its own cipher context, nonce and tag ' +
          '(that is what lets it detect reordering and truncation, and release only authenticated plaintext), so it does a ' +
          'little more work than a single GCM pass over the whole stream, which can only be verified at the very end; ' +
          'with 64 KiB chunks (the former default) that per-chunk work cost about 40% of the throughput. It pushes ' +
          'ciphertext in 128 KiB pieces, so the file gets half as many writes as from the bare Cipher stream (one per ' +
          '64 KiB input piece), which can put it ahead on CPU time. Memory stays flat for both; @aws-crypto/client-node ' +
          'also frames and signs its stream.',
      ],
      files: [{ path: 'docs/benchmarks.svg', content: svg }],
    };
  },
};

async function streamChild(contender: string): Promise<StreamChildResult> {
  const child = fileURLToPath(new URL('../stream-child.js', import.meta.url));
  const { stdout } = await run(process.execPath, ['--expose-gc', child, contender, String(STREAM_MIB), String(STREAM_REPETITIONS)], {
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 300_000,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as StreamChildResult;
}

function packageVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}
