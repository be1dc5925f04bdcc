#!/usr/bin/env bash
# Validates every generated dashboard (dashboards/*.json) against Grafana's own generated
# TypeScript types: npm @grafana/schema (the Dashboard model of Grafana 13) checked by tsc.
# A misspelt or misplaced key fails with TS2353 ("... does not exist in type ..."), a wrong
# value type with TS2322. Installs its tools into .tools/grafana-schema (needs node and npm).
#
# The import envelope (__inputs, __elements, __requires) is read by Grafana's import UI, not
# part of the dashboard model, so it is checked here for shape only and stripped before tsc.
# The types use TypeScript enums (FieldColorModeId, MappingType, ThresholdsMode, ...), which a
# JSON string can never satisfy, so the check maps every enum to the union of its string
# values (`${Enum}`) and keeps everything else, excess-property checks included.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TOOLS="$ROOT/.tools/grafana-schema"
SCHEMA_VERSION="13.2.3"
TYPESCRIPT_VERSION="5.9"

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found (apt-get install nodejs npm)" >&2; exit 1; }
done

mkdir -p "$TOOLS"
if [ ! -f "$TOOLS/node_modules/@grafana/schema/package.json" ] \
   || ! grep -q "\"version\": \"$SCHEMA_VERSION\"" "$TOOLS/node_modules/@grafana/schema/package.json" \
   || [ ! -x "$TOOLS/node_modules/.bin/tsc" ]; then
  [ -f "$TOOLS/package.json" ] || echo '{"private": true}' > "$TOOLS/package.json"
  (cd "$TOOLS" && npm install --no-audit --no-fund --silent \
    "typescript@$TYPESCRIPT_VERSION" "@grafana/schema@$SCHEMA_VERSION")
fi

# The checked sources live under $TOOLS so module resolution finds its node_modules; one
# directory per run, so concurrent runs do not clash.
WORK="$(mktemp -d "$TOOLS/check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

shopt -s nullglob
dashboards=("$ROOT"/dashboards/*.json)
if [ ${#dashboards[@]} -eq 0 ]; then
  echo "error: no dashboards in $ROOT/dashboards; run cargo xtask codegen dashboards" >&2
  exit 1
fi

# One .ts file per dashboard; the JSON must stay on the line of `satisfies` (a newline after
# `=` would end the statement by automatic semicolon insertion).
node - "$WORK" "${dashboards[@]}" <<'JS'
const fs = require('fs');
const path = require('path');
const [work, ...files] = process.argv.slice(2);
for (const file of files) {
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const key of ['__inputs', '__requires']) {
    if (!Array.isArray(dashboard[key])) throw new Error(`${file}: ${key} is not an array`);
  }
  delete dashboard.__inputs;
  delete dashboard.__elements;
  delete dashboard.__requires;
  const name = path.basename(file, '.json').replace(/[^A-Za-z0-9]/g, '_');
  fs.writeFileSync(
    path.join(work, `${name}.ts`),
    `import type { JsonDashboard } from './json';\n` +
      `export const ${name}_dashboard = ${JSON.stringify(dashboard)} satisfies JsonDashboard;\n`,
  );
}
JS

cat > "$WORK/json.ts" <<'TS'
import type { Dashboard } from '@grafana/schema';
/** `T` as JSON can spell it: string enums become the union of their values. */
type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;
export type JsonDashboard = Json<Dashboard>;
TS

cat > "$WORK/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "skipLibCheck": true,
    "types": []
  },
  "include": ["*.ts"]
}
JSON

"$TOOLS/node_modules/.bin/tsc" -p "$WORK/tsconfig.json"
echo "dashboards match @grafana/schema $SCHEMA_VERSION: ${#dashboards[@]} files"
