import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '#platform/logger';
import type { OperationRecord } from './server';

/**
 * The access log (one line per GraphQL operation: ids, names, codes and timing, never variables
 * or results) and the request metrics, labelled by operation and outcome (`ok` or the error code).
 */
export const observeOperations = (registry: Registry, logger: Logger): ((record: OperationRecord) => void) => {
  const requests = new Counter({ name: 'notify_graphql_requests_total', help: 'GraphQL operations answered, by operation (type.rootField) and outcome (ok or the error code).', labelNames: ['operation', 'outcome', 'transport'], registers: [registry] });
  const seconds = new Histogram({ name: 'notify_graphql_request_duration_seconds', help: 'Time from receiving a GraphQL operation to its answer.', labelNames: ['operation'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
  return (r) => {
    requests.inc({ operation: r.operation, outcome: r.code ?? 'ok', transport: r.transport });
    seconds.observe({ operation: r.operation }, r.durationMs / 1000);
    logger.info(
      { requestId: r.requestId, transport: r.transport, operation: r.operation, operationName: r.operationName, tenantId: r.tenantId, status: r.status, code: r.code, durationMs: Math.round(r.durationMs * 10) / 10 },
      'graphql',
    );
  };
};
