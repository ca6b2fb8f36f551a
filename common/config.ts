// Daemon configuration: a YAML file, then command-line flags, then `--set key=value`,
// validated by a zod schema. Mistakes are reported as `key = value: reason`.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  file?: string;
  /** Values from dedicated flags, already keyed by dotted config path. Undefined entries are ignored. */
  flags?: Record<string, unknown>;
  /** Raw `key=value` strings from repeated `--set`. */
  sets?: string[];
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(tree: unknown, path: PropertyKey[]): unknown {
  let node = tree;
  for (const part of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

function readFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`config file ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError([`config file ${file}: top level must be a mapping`]);
  return doc as Tree;
}

/** Parses `--set` values the way YAML reads a scalar, so `--set cache.sizeMiB=512` is a number. */
function parseSet(raw: string): [string, unknown] {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new ConfigError([`--set ${raw}: expected key=value`]);
  const key = raw.slice(0, eq).trim();
  const text = raw.slice(eq + 1);
  let value: unknown = text;
  try {
    value = parseYaml(text);
  } catch {
    value = text;
  }
  return [key, value ?? text];
}

export function loadConfig<S extends z.ZodType>(schema: S, sources: ConfigSources = {}): z.output<S> {
  const tree: Tree = sources.file ? readFile(sources.file) : {};
  for (const [key, value] of Object.entries(sources.flags ?? {})) if (value !== undefined) setPath(tree, key, value);
  for (const raw of sources.sets ?? []) {
    const [key, value] = parseSet(raw);
    setPath(tree, key, value);
  }
  const result = schema.safeParse(tree);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(root)';
      const value = getPath(tree, issue.path);
      const shown = value === undefined ? '(missing)' : JSON.stringify(value);
      return `${key} = ${shown}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }
  return result.data;
}

/** `host:port` with a port in range; used by every daemon's listen and peer addresses. */
export const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-]+:\d{1,5}$/, 'expected host:port')
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be 0..65535');

export const addressList = z.union([
  z.array(hostPort).min(1),
  z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(hostPort).min(1)),
]);

export const metricsSchema = z
  .object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(0) })
  .prefault({});

export { z };
