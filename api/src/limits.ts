import {
  GraphQLError,
  Kind,
  getOperationAST,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { getComplexity, type ComplexityEstimator, type ComplexityEstimatorArgs } from 'graphql-query-complexity';

/** A refusal of the request as a whole, before anything runs: HTTP 400 with a code from the documented list. */
export const requestError = (message: string, code: string, extra: Record<string, unknown> = {}, status = 400): GraphQLError =>
  new GraphQLError(message, { extensions: { code, ...extra, http: { status } } });

const fragmentsOf = (document: DocumentNode): Map<string, FragmentDefinitionNode> => {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return fragments;
};

/** Rejects documents nested deeper than `max` fields (fragments followed, introspection included). */
export const depthLimit = (max: number) => (context: ValidationContext): ASTVisitor => {
  const fragments = fragmentsOf(context.getDocument());
  const depthOf = (set: SelectionSetNode | undefined, seen: ReadonlySet<string>): number => {
    if (!set) return 0;
    let deepest = 0;
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) deepest = Math.max(deepest, s.selectionSet ? 1 + depthOf(s.selectionSet, seen) : 1);
      else if (s.kind === Kind.INLINE_FRAGMENT) deepest = Math.max(deepest, depthOf(s.selectionSet, seen));
      else if (!seen.has(s.name.value)) {
        deepest = Math.max(deepest, depthOf(fragments.get(s.name.value)?.selectionSet, new Set([...seen, s.name.value])));
      }
    }
    return deepest;
  };
  return {
    OperationDefinition(node) {
      const depth = depthOf(node.selectionSet, new Set());
      if (depth > max) {
        context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${max}`, {
          nodes: [node],
          extensions: { code: 'BAD_USER_INPUT' },
        }));
      }
    },
  };
};

/**
 * Counts what an operation would run, fragments expanded (each spread counts its fragment's
 * fields again), memoised per fragment so that nested spreads cost linear time to count.
 */
const expandedCounter = (document: DocumentNode) => {
  const fragments = fragmentsOf(document);
  const memo = new Map<string, { aliases: number; directives: number }>();
  const countSet = (set: SelectionSetNode | undefined, stack: ReadonlySet<string>): { aliases: number; directives: number } => {
    const total = { aliases: 0, directives: 0 };
    if (!set) return total;
    for (const s of set.selections) {
      total.directives += s.directives?.length ?? 0;
      if (s.kind === Kind.FIELD) {
        if (s.alias) total.aliases++;
        const inner = countSet(s.selectionSet, stack);
        total.aliases += inner.aliases;
        total.directives += inner.directives;
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        const inner = countSet(s.selectionSet, stack);
        total.aliases += inner.aliases;
        total.directives += inner.directives;
      } else {
        const name = s.name.value;
        if (stack.has(name)) continue; // a cycle: NoFragmentCyclesRule reports it
        let inner = memo.get(name);
        if (!inner) {
          const fragment = fragments.get(name);
          inner = countSet(fragment?.selectionSet, new Set([...stack, name]));
          inner.directives += fragment?.directives?.length ?? 0;
          memo.set(name, inner);
        }
        total.aliases = Math.min(Number.MAX_SAFE_INTEGER, total.aliases + inner.aliases);
        total.directives = Math.min(Number.MAX_SAFE_INTEGER, total.directives + inner.directives);
      }
    }
    return total;
  };
  return (op: OperationDefinitionNode) => {
    const counted = countSet(op.selectionSet, new Set());
    for (const v of op.variableDefinitions ?? []) counted.directives += v.directives?.length ?? 0;
    return { ...counted, directives: counted.directives + (op.directives?.length ?? 0) };
  };
};

/** Aliases (each one runs its field again) and directives an operation may hold, fragments expanded. */
export const aliasAndDirectiveLimit = (maxAliases: number, maxDirectives: number) => (context: ValidationContext): ASTVisitor => {
  const count = expandedCounter(context.getDocument());
  return {
    OperationDefinition(node) {
      const { aliases, directives } = count(node);
      if (aliases > maxAliases) {
        context.reportError(new GraphQLError(`the operation uses ${aliases} aliases; the limit is ${maxAliases}`, { nodes: [node], extensions: { code: 'BAD_USER_INPUT' } }));
      }
      if (directives > maxDirectives) {
        context.reportError(new GraphQLError(`the operation uses ${directives} directives; the limit is ${maxDirectives}`, { nodes: [node], extensions: { code: 'BAD_USER_INPUT' } }));
      }
    },
  };
};

/** Top-level fields of a mutation run one after the other, each a write: at most `max` per request. */
export const mutationFieldLimit = (max: number) => (context: ValidationContext): ASTVisitor => {
  const fragments = fragmentsOf(context.getDocument());
  const rootFields = (set: SelectionSetNode | undefined, stack: ReadonlySet<string>): number => {
    let n = 0;
    for (const s of set?.selections ?? []) {
      if (s.kind === Kind.FIELD) n += s.name.value === '__typename' ? 0 : 1;
      else if (s.kind === Kind.INLINE_FRAGMENT) n += rootFields(s.selectionSet, stack);
      else if (!stack.has(s.name.value)) n += rootFields(fragments.get(s.name.value)?.selectionSet, new Set([...stack, s.name.value]));
      if (n > max) return n;
    }
    return n;
  };
  return {
    OperationDefinition(node) {
      if (node.operation !== 'mutation') return;
      const n = rootFields(node.selectionSet, new Set());
      if (n > max) {
        context.reportError(new GraphQLError(`a request may hold at most ${max} mutation fields; this one holds more`, { nodes: [node], extensions: { code: 'BAD_USER_INPUT' } }));
      }
    },
  };
};

/** The operation a request runs, or a clear error when `operationName` names none (or is needed). */
export const selectOperation = (document: DocumentNode, operationName: string | null | undefined): OperationDefinitionNode => {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (operation) return operation;
  const count = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION).length;
  if (operationName) throw requestError(`operationName "${operationName.slice(0, 100)}" names no operation in the document`, 'OPERATION_RESOLUTION_FAILURE');
  throw requestError(count === 0 ? 'the document holds no operation' : 'the document holds several operations: name one in operationName', 'OPERATION_RESOLUTION_FAILURE');
};

/** Elements of every list in an argument value (input objects searched too). */
const listElements = (value: unknown, depth = 0): number => {
  if (depth > 20 || value === null || typeof value !== 'object') return 0;
  if (Array.isArray(value)) return value.length + value.reduce<number>((n, v) => n + listElements(v, depth + 1), 0);
  return Object.values(value as Record<string, unknown>).reduce<number>((n, v) => n + listElements(v, depth + 1), 0);
};

/** Cost of a top-level mutation field before its list arguments: it appends to the log. */
export const MUTATION_COST = 10;

/**
 * One per field; list fields times their page size (their `complexity`); list arguments one per
 * element, resolved from the variables, so a 1,000-id list costs 1,000 however it is passed;
 * each top-level mutation field MUTATION_COST more.
 */
const estimator = (mutationType: string | undefined): ComplexityEstimator => (o: ComplexityEstimatorArgs) => {
  const own = o.field.extensions?.['complexity'];
  const base = typeof own === 'function'
    ? (own as (a: ComplexityEstimatorArgs) => number)(o)
    : typeof own === 'number' ? own + o.childComplexity : 1 + o.childComplexity;
  const write = o.type.name === mutationType ? MUTATION_COST : 0;
  return base + write + listElements(o.args);
};

/**
 * Estimated cost of the operation the request runs, with the request's variables. Throws a
 * BAD_USER_INPUT GraphQLError over `max`, or when the variables do not fit the operation.
 */
export const checkCost = (
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined | null,
  operationName: string | undefined | null,
  max: number,
  context: CostContext = { auditScanLimit: 10_000 },
): number => {
  const operation = selectOperation(document, operationName);
  // Only the selected operation (and the fragments) is estimated, whatever its name.
  const query: DocumentNode = { ...document, definitions: document.definitions.filter((d) => d === operation || d.kind === Kind.FRAGMENT_DEFINITION) };
  let cost: number;
  try {
    cost = getComplexity({
      schema,
      query,
      variables: variables && typeof variables === 'object' && !Array.isArray(variables) ? variables : {},
      estimators: [estimator(schema.getMutationType()?.name)],
      context,
    });
  } catch (e) {
    // The estimate coerces variables before execution does, so their errors surface here first.
    if (e instanceof GraphQLError) throw requestError(e.message, 'BAD_USER_INPUT');
    throw e;
  }
  if (cost > max) {
    throw requestError(`query cost ${cost} exceeds the limit of ${max}; ask for smaller pages (first), fewer fields or shorter lists`, 'BAD_USER_INPUT', { cost, limit: max });
  }
  return cost;
};

/** Connection fields cost their children times the page size. */
export const pageComplexity = ({ args, childComplexity }: { args: Record<string, unknown>; childComplexity: number }): number =>
  1 + childComplexity * (typeof args['first'] === 'number' ? (args['first'] as number) : 20);

/** Membership changes write one user stream per id. */
export const perIdComplexity = (listArg: string, perId: number) => ({ args, childComplexity }: { args: Record<string, unknown>; childComplexity: number }): number =>
  1 + childComplexity + perId * (Array.isArray(args[listArg]) ? (args[listArg] as unknown[]).length : 0);

export type CostContext = Readonly<{ auditScanLimit: number }>;

/** Events of the log read for one unit of cost (a read and a filter each, no decryption). */
export const AUDIT_EVENTS_PER_COST = 10;

/**
 * auditLog reads the log: unfiltered, `first + 1` events; filtered (a user, a notification, a
 * time range), up to the scan limit, whatever `first` is. Priced by what it reads and returns.
 */
export const auditComplexity = ({ args, childComplexity, context }: { args: Record<string, unknown>; childComplexity: number; context?: Partial<CostContext> }): number => {
  const first = typeof args['first'] === 'number' ? (args['first'] as number) : 100;
  const filtered = ['userId', 'notificationId', 'from', 'to'].some((k) => args[k] != null);
  const scanned = filtered ? (context?.auditScanLimit ?? 10_000) : first + 1;
  return 1 + childComplexity * first + Math.ceil(scanned / AUDIT_EVENTS_PER_COST);
};
