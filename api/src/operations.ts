import { Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/** How many top-level fields named `name` an operation runs (aliases and fragments included). */
export const countRootFields = (document: DocumentNode, operation: OperationDefinitionNode, name: string): number => {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const count = (set: SelectionSetNode | undefined, stack: ReadonlySet<string>): number => {
    let n = 0;
    for (const s of set?.selections ?? []) {
      if (s.kind === Kind.FIELD) n += s.name.value === name ? 1 : 0;
      else if (s.kind === Kind.INLINE_FRAGMENT) n += count(s.selectionSet, stack);
      else if (!stack.has(s.name.value)) n += count(fragments.get(s.name.value)?.selectionSet, new Set([...stack, s.name.value]));
    }
    return n;
  };
  return count(operation.selectionSet, new Set());
};
