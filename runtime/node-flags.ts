/**
 * The V8 flags every Vigil process runs with: the image's ENTRYPOINT (Dockerfile) and `npm start` (package.json) spell
 * them out, infra/image.test.ts keeps both equal to this constant, and the benchmark spawns the product with it.
 *
 * Why a larger young generation: a worker's objects live for one poll (decoded envelopes, inference records, encoded
 * rows) and the scavenger copies whatever is still alive when the young generation fills. V8's default semi-space
 * (16 MB on this machine) fills several times per poll; at 64 MB most of a poll's objects are dead when it runs.
 * Measured (bench/README.md, "Young generation"): the vitals worker alone over the same 200,000 preloaded events,
 * alternating, 6 pairs: 41.2-51.2 µs of CPU per event at the default, 38.0-43.7 at 64 MB (-12% by the medians), peak
 * RSS unchanged; 32 MB did not help, 128 MB added ~110 MB of RSS for no further gain. 5 pairs each of the others: the
 * embedded chain +4.6% events/s (higher in every pair), the sink no clear change; both ~20-120 MB more peak RSS.
 */
export const VIGIL_NODE_FLAGS = ['--max-semi-space-size=64'] as const;
