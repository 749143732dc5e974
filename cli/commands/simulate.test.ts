import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { envelopeToNdjson } from '../../adapters/file/ndjson.ts';
import { type FileBatch, openFileSource } from '../../adapters/file/source.ts';
import { type Envelope, payloadOf } from '../../schemas/types.ts';
import { type SimulatedRecord, simulateFleet } from '../../simulator/simulate.ts';
import { brokenJsonLine, registerSimulate, simulateToFile } from './simulate.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-simulate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OPTIONS = { devices: 120, events: 6_000, seed: 17, duplicateRate: 0.05, malformedRate: 0.04, replayRate: 0.01 };

async function readBack(path: string) {
  const batches: FileBatch[] = [];
  for await (const batch of openFileSource(path, { batchSize: 700 })) batches.push(batch);
  const rejected: Record<string, number> = {};
  for (const b of batches) for (const r of b.rejected) rejected[r.code] = (rejected[r.code] ?? 0) + 1;
  return {
    consumed: batches.reduce((n, b) => n + b.consumed, 0),
    records: batches.flatMap((b) => b.records.map((r) => r.value)),
    rejected,
  };
}

describe('simulateToFile', () => {
  it('writes NDJSON whose read-back matches the truth sidecar and gives back the simulated envelopes', async () => {
    const out = join(dir, 'fleet.ndjson');
    const result = await simulateToFile(OPTIONS, out, 'ndjson');
    const truth = JSON.parse(readFileSync(result.truthFile, 'utf8'));
    const back = await readBack(out);
    expect(back.consumed).toBe(OPTIONS.events);
    expect(truth.expected.consumed).toBe(OPTIONS.events);
    // What the file reader itself rejects: raw-byte faults (broken JSON) and payload/event_type mismatches.
    expect(back.rejected).toEqual({
      JSON_PARSE_FAILED: truth.expected.dlq.JSON_PARSE_FAILED,
      ENVELOPE_INVALID: truth.expected.dlq.ENVELOPE_INVALID,
    });
    expect(back.rejected.JSON_PARSE_FAILED).toBeGreaterThan(0);
    // Everything else reaches the chain: valid events, duplicates, replays and the semantic faults validate rejects.
    const chainFaults = Object.entries(truth.expected.dlq as Record<string, number>)
      .filter(([code]) => code !== 'JSON_PARSE_FAILED' && code !== 'ENVELOPE_INVALID')
      .reduce((n, [, count]) => n + count, 0);
    expect(back.records.length).toBe(truth.expected.emitted + truth.expected.duplicates + chainFaults);
    const expected = [...simulateFleet(OPTIONS)]
      .filter((r): r is Extract<SimulatedRecord, { kind: 'envelope' }> => r.kind === 'envelope')
      .map((r) => r.envelope)
      .filter((e) => payloadOf(e.payload)?.type === e.event_type);
    expect(back.records).toEqual(expected);
    expect(truth.summary.format).toBe('ndjson');
    expect(truth.options.seed).toBe(17);
  });

  it('writes an Avro container without the raw-byte faults, counted as omitted', async () => {
    const out = join(dir, 'fleet.avro');
    const result = await simulateToFile(OPTIONS, out, 'avro');
    const truth = JSON.parse(readFileSync(result.truthFile, 'utf8'));
    const back = await readBack(out);
    expect(back.rejected).toEqual({});
    expect(back.consumed).toBe(truth.expected.consumed);
    expect(truth.summary.omitted + truth.expected.consumed).toBe(OPTIONS.events);
    expect(truth.summary.omitted).toBeGreaterThan(0);
    expect(truth.expected.dlq.PAYLOAD_TYPE_MISMATCH).toBeGreaterThan(0);
    const expected = [...simulateFleet(OPTIONS)].flatMap((r) => (r.kind === 'envelope' ? [r.envelope] : []));
    expect(back.records).toEqual(expected);
  });

  it('writes the same bytes for the same options, in both formats', async () => {
    for (const [format, ext] of [
      ['ndjson', 'ndjson'],
      ['avro', 'avro'],
    ] as const) {
      const a = join(dir, `same-a.${ext}`);
      const b = join(dir, `same-b.${ext}`);
      await simulateToFile({ ...OPTIONS, events: 2_000 }, a, format);
      await simulateToFile({ ...OPTIONS, events: 2_000 }, b, format);
      expect(readFileSync(a).equals(readFileSync(b)), format).toBe(true);
      expect(readFileSync(`${a}.truth.json`, 'utf8')).toBe(readFileSync(`${b}.truth.json`, 'utf8').replaceAll(b, a));
    }
  });
});

describe('brokenJsonLine', () => {
  it('is never valid JSON, never blank, never multi-line', () => {
    const sources: Envelope[] = [];
    for (const r of simulateFleet({ devices: 10, events: 200, seed: 1 }))
      if (r.kind === 'envelope') sources.push(r.envelope);
    fc.assert(
      fc.property(
        fc.constantFrom(...sources),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (e, cut) => {
          const line = brokenJsonLine(e, cut);
          expect(line.length).toBeGreaterThan(0);
          expect(line.length).toBeLessThan(envelopeToNdjson(e).length);
          expect(line).not.toContain('\n');
          expect(() => JSON.parse(line)).toThrow();
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('vigil simulate', () => {
  async function cli(args: string[]): Promise<string> {
    const program = new Command().exitOverride();
    registerSimulate(program);
    let output = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output += chunk.toString();
      return true;
    });
    try {
      await program.parseAsync(['node', 'vigil', ...args]);
    } finally {
      spy.mockRestore();
    }
    return output;
  }

  it('writes the file and prints one JSON line of truth counts with --json', async () => {
    const out = join(dir, 'cli.ndjson');
    const printed = await cli([
      'simulate',
      '--out',
      out,
      '--devices',
      '40',
      '--events',
      '900',
      '--seed',
      '3',
      '--duplicates',
      '0.1',
      '--malformed',
      '0.05',
      '--replays',
      '0',
      '--json',
    ]);
    const lines = printed.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0] as string);
    expect(summary.records).toBe(900);
    expect(summary.replays).toBe(0);
    expect(summary.valid + summary.duplicates + summary.malformed).toBe(900);
    expect(summary.truth).toBe(`${out}.truth.json`);
    const back = await readBack(out);
    expect(back.consumed).toBe(900);
  });

  it('picks Avro from the extension, turns the bias off with none, and prints a human summary', async () => {
    const out = join(dir, 'cli.avro');
    const printed = await cli([
      'simulate',
      '--out',
      out,
      '--devices',
      '40',
      '--events',
      '500',
      '--biased-firmware',
      'none',
      '--timestamps',
      'iso',
    ]);
    expect(printed).toMatch(/^wrote \d+ records to .*cli\.avro \(avro\)/);
    const truth = JSON.parse(readFileSync(`${out}.truth.json`, 'utf8'));
    expect(truth.format).toBe('avro');
    expect(truth.options.biasedFirmware).toBeNull();
  });

  it('refuses bad flags with CONFIG_INVALID', async () => {
    const out = join(dir, 'bad.ndjson');
    for (const args of [
      ['--duplicates', '2'],
      ['--malformed', 'lots'],
      ['--events', '-5'],
      ['--devices', '1.5'],
      ['--format', 'csv'],
      ['--timestamps', 'local'],
      ['--start', 'yesterday'],
      ['--biased-firmware', ''],
    ]) {
      await expect(cli(['simulate', '--out', out, ...args]), args.join(' ')).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
    }
  });
});
