import { describe, expect, it } from 'vitest';
import { pipelineGroups } from './pipeline';

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
});
