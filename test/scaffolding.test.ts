/**
 * Test scaffolding lives with the tests (STYLE.md, "Test scaffolding with the tests"): shared fixtures, conformance
 * suites, arbitraries and type-level tests sit under test/, and no production module imports vitest, fast-check or
 * anything under test/. Unit tests beside the code they test (`*.test.ts`) are the style and stay where they are.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
/** Folders that ship: everything but test/ and bench/ (benchmarks may borrow test fixtures). */
const PRODUCTION = [
  'access',
  'adapters',
  'audit',
  'bin',
  'cli',
  'evidence',
  'gateway',
  'identity',
  'infra',
  'models',
  'operators',
  'pipelines',
  'runtime',
  'schemas',
  'scripts',
  'simulator',
  'surveillance',
];
const TEST_ONLY_PACKAGES = ['vitest', 'fast-check'];

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') yield* sources(path);
    } else if (/\.(ts|js)$/.test(entry.name)) yield path;
  }
}

const isTest = (path: string) => /\.test(-d)?\.ts$/.test(path);

/** Every module specifier a file imports (static, re-exported or dynamic with a literal). */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

const modules = PRODUCTION.flatMap((folder) => [...sources(join(ROOT, folder))]).filter((path) => !isTest(path));

describe('test scaffolding lives with the tests', () => {
  it('finds the production modules it checks', () => {
    expect(modules.length).toBeGreaterThan(50);
  });

  it('no production module imports a test-only package or anything under test/', () => {
    const offenders: string[] = [];
    for (const path of modules) {
      for (const spec of specifiers(readFileSync(path, 'utf8'))) {
        const testPackage = TEST_ONLY_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`));
        const underTest = spec.startsWith('.') && relative(ROOT, resolve(path, '..', spec)).split(sep)[0] === 'test';
        if (testPackage || underTest) offenders.push(`${relative(ROOT, path)} imports ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('type-level tests live under test/', () => {
    const misplaced = PRODUCTION.flatMap((folder) => [...sources(join(ROOT, folder))])
      .filter((path) => path.endsWith('.test-d.ts'))
      .map((path) => relative(ROOT, path));
    expect(misplaced).toEqual([]);
  });
});
