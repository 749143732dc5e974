/** Type-level tests of the pipeline DSL: a wrong chain must not compile. */
import { describe, expectTypeOf, it } from 'vitest';
import { dedupe } from '../../operators/dedupe/index.ts';
import { detectDrift } from '../../operators/detect-drift/index.ts';
import { score } from '../../operators/score/index.ts';
import type { CheckedEvent, ScoredEvent } from '../../operators/types.ts';
import { validate } from '../../operators/validate/index.ts';
import { driftHistogramSink, inferenceOutput, normalisedOutput } from '../../pipelines/outputs.ts';
import type { Operator } from '../../runtime/operator.ts';
import {
  definePipeline,
  fromSource,
  type PipelineBuilder,
  type PipelineDefinition,
  type SourceSpec,
} from '../../runtime/pipeline.ts';
import type { InFlight } from '../../runtime/record.ts';
import type { Envelope, Inference, NormalisedEvent } from '../../schemas/types.ts';

const source = { topic: 'raw', schema: 'envelope' } as { topic: string; schema: string; __type?: Envelope };
const model = { model: 'news2', version: '1.0.0' };

describe('pipeline DSL', () => {
  it('infers each link and the chain’s side outputs', () => {
    const chain = definePipeline({ name: 'vitals', version: '1', source })
      .pipe(validate())
      .pipe(dedupe())
      .pipe(score({ models: [model] }));
    expectTypeOf(chain).toEqualTypeOf<PipelineBuilder<Envelope, ScoredEvent, Record<never, never>>>();
    const withDrift = chain.pipe(detectDrift(model));
    const built = withDrift.outputs({
      records: [normalisedOutput('t'), inferenceOutput()],
      side: { driftHistograms: driftHistogramSink },
    });
    expectTypeOf(built).toExtend<PipelineDefinition<Envelope, ScoredEvent>>();
  });

  it('rejects an operator that does not accept what the chain produces', () => {
    const validated = definePipeline({ name: 'vitals', version: '1', source }).pipe(validate());
    expectTypeOf(validated).toExtend<PipelineBuilder<Envelope, CheckedEvent, Record<never, never>>>();
    // @ts-expect-error drift needs scored events: it cannot follow validate directly
    validated.pipe(detectDrift(model));
    // @ts-expect-error validate takes raw envelopes, not checked events
    validated.pipe(validate());
  });

  it('requires a sink for every side output the chain declares', () => {
    const chain = definePipeline({ name: 'vitals', version: '1', source })
      .pipe(validate())
      .pipe(dedupe())
      .pipe(score({ models: [model] }))
      .pipe(detectDrift(model));
    // @ts-expect-error driftHistograms has no sink
    chain.outputs({ records: [inferenceOutput()], side: {} });
  });
});

describe('pipeline DSL, several sources', () => {
  const inferences = { topic: 'inf', schema: 'inference' } as SourceSpec<Inference>;
  const events = { topic: 'norm', schema: 'normalised' } as SourceSpec<NormalisedEvent>;

  it('reads the union of its sources’ record types', () => {
    const head = definePipeline({ name: 'alerts', version: '1', sources: [inferences, events] });
    expectTypeOf(head).toEqualTypeOf<
      PipelineBuilder<Inference | NormalisedEvent, Inference | NormalisedEvent, Record<never, never>>
    >();
  });

  it('rejects an operator that accepts only one of the sources', () => {
    const head = definePipeline({ name: 'alerts', version: '1', sources: [inferences, events] });
    const onlyInferences = {} as Operator<Inference, Inference>;
    // @ts-expect-error the chain also carries normalised events
    head.pipe(onlyInferences);
  });

  it('fromSource narrows a record to its source’s type', () => {
    const record = {} as InFlight<Inference | NormalisedEvent>;
    if (fromSource(inferences, record)) expectTypeOf(record.value).toEqualTypeOf<Inference>();
  });
});
