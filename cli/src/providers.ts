import fs from 'node:fs';
import { PLATFORM, type IntegrationInput } from '#schema/integrations';
import { isDomainError } from '#schema/errors';
import { parseIntegrationInput } from '#schema/values';
import type { Commands } from '#command/application';

const SYSTEM = { keyId: 'system', requestId: 'platform-defaults' };

/** A PROVIDERS_FILE entry has the GraphQL input's shape: `endpoint` is a URL string. */
const asInput = (entry: Record<string, unknown>): IntegrationInput => ({
  ...entry,
  name: entry['name'],
  channel: entry['channel'],
  endpoint: typeof entry['endpoint'] === 'string' ? { url: entry['endpoint'] } : entry['endpoint'],
});

/**
 * Reads PROVIDERS_FILE (a JSON array of integrations) and validates every entry as the mutation
 * would; problems go to `problem`, with the configuration's others, and nothing is applied then.
 */
export const readProvidersFile = (file: string, problem: (message: string) => void): IntegrationInput[] => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problem(`PROVIDERS_FILE ${file} is not readable JSON: ${(e as Error).message.replace(/\s+/g, ' ').slice(0, 200)}`);
    return [];
  }
  if (!Array.isArray(parsed)) {
    problem(`PROVIDERS_FILE ${file} must hold a JSON array of integrations`);
    return [];
  }
  const problems = { push: problem };
  const names = new Set<string>();
  const inputs = parsed.map((entry, i) => {
    const input = asInput(entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : {});
    try {
      const { spec } = parseIntegrationInput(input, { allowEndpoint: true });
      if (names.has(spec.name)) problems.push(`PROVIDERS_FILE entry ${i}: the name "${spec.name}" is used twice`);
      names.add(spec.name);
    } catch (e) {
      if (!isDomainError(e)) throw e;
      problems.push(`PROVIDERS_FILE entry ${i}: ${e.message}`);
    }
    return input;
  });
  return inputs;
};

/**
 * Makes `inputs` the platform's default integrations: each configured (a no-op when unchanged),
 * the others removed. Operators may point these at custom endpoints.
 */
export const applyPlatformDefaults = async (commands: Pick<Commands, 'integrations'>, inputs: readonly IntegrationInput[]): Promise<void> => {
  const wanted = new Set<string>();
  for (const input of inputs) {
    const { spec } = parseIntegrationInput(input, { allowEndpoint: true });
    wanted.add(spec.name);
    await commands.integrations.configure(SYSTEM, PLATFORM, input, { allowEndpoint: true });
  }
  for (const name of (await commands.integrations.state(PLATFORM)).integrations.keys()) {
    if (!wanted.has(name)) await commands.integrations.remove(SYSTEM, PLATFORM, name);
  }
};
