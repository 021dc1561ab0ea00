import { describe, expect, it } from 'vitest';
import { batcher, pipelineGroups } from './pipeline';

describe('the pipeline threads of a process that also serves the API', () => {
  it('puts delivery on a thread of its own, projections and expiry on another, and leaves out roles the process lacks', () => {
    expect(pipelineGroups(['api', 'projections', 'delivery', 'expiry'], 2)).toEqual([['delivery'], ['projections', 'expiry']]);
    expect(pipelineGroups(['api', 'projections'], 2)).toEqual([['projections']]);
    expect(pipelineGroups(['api', 'delivery', 'expiry'], 2)).toEqual([['delivery'], ['expiry']]);
  });

  it('keeps every role on one thread when asked for one', () => {
    expect(pipelineGroups(['api', 'projections', 'delivery', 'expiry'], 1)).toEqual([['projections', 'delivery', 'expiry']]);
    expect(pipelineGroups(['api', 'delivery'], 1)).toEqual([['delivery']]);
  });

  it('hands what comes in one turn of the event loop on in one batch, and what comes later in the next', async () => {
    const flushed: number[][] = [];
    const add = batcher<number>((items) => flushed.push(items));
    add(1);
    add(2);
    add(3);
    expect(flushed).toEqual([]);
    await new Promise((r) => setImmediate(r));
    add(4);
    await new Promise((r) => setImmediate(r));
    expect(flushed).toEqual([[1, 2, 3], [4]]);
  });
});
