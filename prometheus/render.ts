// `npm run rules`: writes prometheus/tcpstate.rules.yml from prometheus/config.ts.
import { writeFileSync } from 'node:fs';
import { DEFAULT_CONFIG } from './config.ts';
import { renderRulesYaml } from './rules.ts';

const out = new URL('./tcpstate.rules.yml', import.meta.url);
writeFileSync(out, renderRulesYaml(DEFAULT_CONFIG));
process.stdout.write(`wrote ${out.pathname}\n`);
