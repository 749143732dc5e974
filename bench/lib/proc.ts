/**
 * Child processes of the benchmark: every run is its own process, so its CPU and RSS are its own, and its topic
 * namespace (VIGIL_TOPIC_PREFIX, read once when runtime/endpoints.ts loads) is set before it starts.
 */
import { join } from 'node:path';
import { VIGIL_NODE_FLAGS } from '../../runtime/node-flags.ts';
import { type Child, type Exited, REPO, spawnNode, VIGIL } from '../../test/support/process.ts';

export { type Child, type Exited, freePort, REPO, spawnNode, VIGIL } from '../../test/support/process.ts';

/** `node <flags> bin/vigil.js ...` as the image and `npm start` run it (plus `extraNodeArgs`, e.g. a CPU profile). */
export function spawnVigil(
  args: readonly string[],
  env: Record<string, string>,
  extraNodeArgs: readonly string[] = [],
): Child {
  // The V8 flags a deployed Vigil process runs with (runtime/node-flags.ts): the product runs as deployed.
  return spawnNode(VIGIL, args, env, [...VIGIL_NODE_FLAGS, ...extraNodeArgs]);
}

/** A TypeScript file run through tsx's loader (`node --import tsx file.ts`). */
export function spawnTs(
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Child {
  return spawnNode(join(REPO, file), args, env, ['--import', 'tsx', ...nodeArgs]);
}

/** The last JSON line a process printed; throws with its stderr when it failed or printed none. */
export function lastJson<T>(what: string, exited: Exited): T {
  const line = exited.stdout.trim().split('\n').at(-1) ?? '';
  if (exited.code !== 0 || !line.startsWith('{')) {
    throw new Error(
      `${what} failed (exit ${exited.code ?? exited.signal}):\n${exited.stderr.slice(-4000)}\n${exited.stdout.slice(-2000)}`,
    );
  }
  return JSON.parse(line) as T;
}

/** Sum of a Prometheus counter's samples whose labels contain `match` (0 when the endpoint is not up yet). */
export async function scrapeCounter(port: number, name: string, match = ''): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (match && !line.includes(match)) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  } catch {
    return 0;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
