// A user's rules settings (a JSON or YAML file, or flags of `npm run rules`) over DEFAULT_CONFIG:
// selectors, runbook URL and thresholds without editing TypeScript. Parsing is pure; reading the
// file is the caller's.

import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_CONFIG, type RulesConfig } from './config.ts';

/** A Prometheus duration as rule files accept it: 30s, 5m, 1h30m. */
const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, 'a Prometheus duration such as 30s, 5m or 1h30m');
const ratio = z.number().positive().max(1);
const positive = z.number().positive();
const nonNegative = z.number().min(0);
const count = z.number().int().min(0);

const SETTINGS = z.strictObject({
  selector: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*".*"(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*".*")*$/, 'label matchers such as job="tcpstate"'),
  groupBy: z.array(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a label name')).min(1),
  runbookUrl: z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' }),
  orphansWarningRatio: ratio,
  orphansCriticalRatio: ratio,
  orphansFor: duration,
  trendWindow: duration,
  trendHorizon: duration,
  trendFor: duration,
  memoryTrendMinRatio: ratio,
  orphansTrendMinRatio: ratio,
  memoryPressureFor: duration,
  memoryMaxRatio: ratio,
  memoryMaxFor: duration,
  finWait1Bytes: positive,
  finWait1PressureRatio: ratio,
  finWait1For: duration,
  persistCapSeconds: positive,
  persistCapWindow: duration,
  persistCapFor: duration,
  abortTimeoutRate: positive,
  abortWindow: duration,
  abortTimeoutFor: duration,
  closeWaitSockets: count,
  closeWaitFor: duration,
  finWait2Sockets: count,
  finWait2For: duration,
  lastAckSockets: count,
  lastAckFor: duration,
  synRecvSockets: count,
  synRecvFor: duration,
  listenOverflowRate: nonNegative,
  listenOverflowWindow: duration,
  listenOverflowFor: duration,
  listenFullFor: duration,
  unaccountedOrphansMin: positive,
  unaccountedOrphansRatio: ratio,
  unaccountedOrphansFor: duration,
  exporterDownFor: duration,
  sourceDownFor: duration,
  staleSeconds: positive,
  staleFor: duration,
}) satisfies z.ZodType<RulesConfig>;

export type RulesSettings = Partial<RulesConfig>;

export class SettingsError extends Error {}

/** Validates settings (already parsed from JSON/YAML) and lays them over `base`. */
export function applySettings(raw: unknown, base: RulesConfig = DEFAULT_CONFIG, origin = 'settings'): RulesConfig {
  if (raw === null || raw === undefined) return base;
  const r = SETTINGS.partial().safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const where = i.path.length > 0 ? i.path.join('.') : i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(top level)';
      return `${origin}: ${where}: ${i.message}`;
    });
    throw new SettingsError(lines.join('\n'));
  }
  const merged = { ...base, ...(r.data as RulesSettings) };
  if (merged.orphansTrendMinRatio >= merged.orphansCriticalRatio) {
    throw new SettingsError(
      `${origin}: orphansTrendMinRatio (${merged.orphansTrendMinRatio}) is not below orphansCriticalRatio (${merged.orphansCriticalRatio}): TcpOrphansFillingUp could never fire`,
    );
  }
  if (merged.orphansCriticalRatio < merged.orphansWarningRatio) {
    throw new SettingsError(`${origin}: orphansCriticalRatio (${merged.orphansCriticalRatio}) is below orphansWarningRatio (${merged.orphansWarningRatio})`);
  }
  return merged;
}

/** Parses a settings file's text: JSON is YAML, so one parser reads both. */
export function parseSettingsText(text: string, origin: string): unknown {
  try {
    return parseYaml(text) as unknown;
  } catch (e) {
    throw new SettingsError(`${origin}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The value of `job` when the selector pins it exactly (job="x"), for the ServiceMonitor's job label. */
export function jobOf(selector: string): string | undefined {
  return /(?:^|,)\s*job\s*=\s*"([^"]*)"/.exec(selector)?.[1];
}
