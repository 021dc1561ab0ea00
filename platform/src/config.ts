import path from 'node:path';

export const ROLES = ['api', 'projections', 'delivery', 'expiry'] as const;
export type Role = (typeof ROLES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Config = Readonly<{
  host: string;
  port: number;
  dataDir: string;
  /** Base64 or hex of 32 bytes; absent: the embedded default keeps one in `<dataDir>/master.key`. */
  masterKey: string | null;
  roles: readonly Role[];
  logLevel: LogLevel;
  maxQueryDepth: number;
  maxQueryCost: number;
  /** Embedded default only: also write the first operator key to `<dataDir>/operator.key`. */
  writeOperatorKeyFile: boolean;
  /**
   * Where providers send: the provider sandbox, in this process (`embedded`) or another one
   * (the path of the JSON description its process printed).
   */
  sandbox: Readonly<{ kind: 'embedded'; latencyMs: number }> | Readonly<{ kind: 'file'; path: string }>;
}>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the configuration from environment variables and reports every problem at once. */
export const loadConfig = (env: Env, cwd: string = process.cwd()): Config => {
  const problems: string[] = [];
  const value = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
    problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  };

  const rolesRaw = value('ROLES');
  let roles: Role[] = [...ROLES];
  if (rolesRaw !== undefined && rolesRaw !== 'all') {
    const listed = rolesRaw.split(',').map((r) => r.trim()).filter(Boolean);
    const unknown = listed.filter((r) => !(ROLES as readonly string[]).includes(r));
    if (unknown.length > 0 || listed.length === 0) {
      problems.push(`ROLES must be "all" or a comma-separated list of ${ROLES.join(', ')}, got "${rolesRaw}"`);
    } else {
      roles = [...new Set(listed as Role[])];
    }
  }

  const masterKey = value('MASTER_KEY') ?? null;
  if (masterKey !== null) {
    const bytes = /^[0-9a-fA-F]{64}$/.test(masterKey) ? 32 : Buffer.from(masterKey, 'base64').length;
    if (bytes !== 32) problems.push('MASTER_KEY must be 32 bytes, base64 or hex (make one: openssl rand -base64 32)');
  }

  const config: Config = {
    host: value('HOST') ?? '127.0.0.1',
    port: integer('PORT', 4000, 0, 65535),
    dataDir: path.resolve(cwd, value('DATA_DIR') ?? 'data'),
    masterKey,
    roles,
    logLevel: oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    maxQueryDepth: integer('MAX_QUERY_DEPTH', 12, 2, 100),
    maxQueryCost: integer('MAX_QUERY_COST', 20_000, 10, 10_000_000),
    writeOperatorKeyFile: bool('WRITE_OPERATOR_KEY_FILE', true),
    sandbox: value('SANDBOX_FILE') ? { kind: 'file', path: path.resolve(cwd, value('SANDBOX_FILE')!) } : { kind: 'embedded', latencyMs: integer('SANDBOX_LATENCY_MS', 20, 0, 60_000) },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
};
