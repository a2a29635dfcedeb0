// Generates one JSON Schema per response type named in schema/types.ts, from the SDK's own
// `generated/*/types.d.ts` in node_modules, into schema/generated/ (git-ignored).
//
// Generated at test time rather than committed: the schemas then always describe exactly the SDK
// version pinned in package-lock.json, a hand edit (or a "quick fix" that loosens a schema) is
// impossible, and several MB of derived JSON stay out of the repository.
import { createGenerator } from 'ts-json-schema-generator';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const typesFile = join(here, 'schema', 'types.ts');
const outDir = join(here, 'schema', 'generated');
const stampFile = join(outDir, '.stamp');

const typesSource = readFileSync(typesFile, 'utf8');
const typeNames = [...typesSource.matchAll(/^export type (\w+)/gm)].map((m) => m[1]);

// Regenerate only when the type list or the installed SDK changed.
const sdkVersion = JSON.parse(readFileSync(join(here, 'node_modules/@dfns/sdk/package.json'), 'utf8')).version;
const stamp = createHash('sha256')
  .update(typesSource)
  .update(sdkVersion)
  .update(readFileSync(join(here, 'gen-schemas.mjs')))
  .digest('hex');
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
  console.log(`schemas up to date (${typeNames.length} types, @dfns/sdk ${sdkVersion})`);
  process.exit(0);
}

const started = Date.now();
const generator = createGenerator({
  path: typesFile,
  tsconfig: join(here, 'schema', 'tsconfig.json'),
  // Strict: a field the SDK type does not have is a wrong field name (or an undocumented one).
  additionalProperties: false,
  expose: 'none',
  topRef: false,
  jsDoc: 'none',
  skipTypeCheck: false,
});

mkdirSync(outDir, { recursive: true });
for (const name of typeNames) {
  const schema = generator.createSchema(name);
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(schema, null, 1));
}
writeFileSync(stampFile, stamp);
console.log(
  `generated ${typeNames.length} schemas from @dfns/sdk ${sdkVersion} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
