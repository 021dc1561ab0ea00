import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';

/** Rejects documents nested deeper than `max` fields (fragments followed, introspection included). */
export const depthLimit = (max: number) => (context: ValidationContext): ASTVisitor => {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of context.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
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
 * Estimated cost: 1 per field, list fields multiplied by their page size (see `complexity` on
 * connection fields). Computed with the request's variables, so `first: $n` counts.
 */
export const checkCost = (
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | undefined | null,
  max: number,
): void => {
  let cost: number;
  try {
    cost = getComplexity({
      schema,
      query: document,
      variables: variables ?? {},
      ...(operationName ? { operationName } : {}),
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (e) {
    // The estimate coerces variables before execution does, so their errors surface here first.
    if (e instanceof GraphQLError) throw new GraphQLError(e.message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
    throw e;
  }
  if (cost > max) {
    throw new GraphQLError(`query cost ${cost} exceeds the limit of ${max}; ask for smaller pages (first) or fewer fields`, {
      extensions: { code: 'BAD_USER_INPUT', cost, limit: max, http: { status: 400 } },
    });
  }
};

/** Connection fields cost their children times the page size. */
export const pageComplexity = ({ args, childComplexity }: { args: Record<string, unknown>; childComplexity: number }): number =>
  1 + childComplexity * (typeof args['first'] === 'number' ? (args['first'] as number) : 20);
