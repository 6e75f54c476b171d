// Parses every LogQL recipe in the given Markdown files with Grafana's LogQL grammar
// (@grafana/lezer-logql) and fails on the first that does not parse. A recipe is a fenced code
// block marked `logql`; `<HASH>`-style placeholders are filled in first. Prints one line per
// recipe: `ok <file>:<line>` or `error <file>:<line> at <column>: <query>`.
// Usage: NODE_PATH=$BMON_CACHE/npm/node_modules node scripts/check-logql.cjs FILE...
const fs = require('fs');
const { parser } = require('@grafana/lezer-logql');

const fill = { '<HASH>': '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206', '<NODE>': 'core-1',
  '<NETWORK>': 'main', '<TXID>': 'a1075db55d416d3ca199f55b6084e2115b9345e16c5cf302fc80e9d5fbf5d48d' };
let failed = 0;
let count = 0;
for (const file of process.argv.slice(2)) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```logql') continue;
    const start = i + 1;
    const body = [];
    for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
    let query = body.filter((l) => !l.trim().startsWith('#')).join('\n').trim();
    for (const [k, v] of Object.entries(fill)) query = query.split(k).join(v);
    count++;
    let at = -1;
    parser.parse(query).iterate({ enter: (n) => { if (n.type.isError && at < 0) at = n.from; } });
    if (at >= 0 || query.length === 0) {
      failed++;
      console.log(`error ${file}:${start} at ${at}: ${query}`);
    } else {
      console.log(`ok ${file}:${start}`);
    }
  }
}
console.log(`${count} recipes, ${failed} failed`);
process.exit(failed > 0 || count === 0 ? 1 : 0);
