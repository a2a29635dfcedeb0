// Validation of emulator responses against the JSON Schemas generated from the SDK's own types.
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const schemaDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'generated');
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
addFormats(ajv);
const validators = new Map();
const isUtcDateTime = ajv.compile({ type: 'string', format: 'date-time', pattern: 'Z$' });

function validatorFor(typeName) {
  let validator = validators.get(typeName);
  if (!validator) {
    const file = join(schemaDir, `${typeName}.json`);
    let schema;
    try {
      schema = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`no generated schema for ${typeName} (${file}); run \`node gen-schemas.mjs\`: ${err.message}`);
    }
    validator = ajv.compile(schema);
    validators.set(typeName, validator);
  }
  return validator;
}

const show = (value) => {
  const text = JSON.stringify(value);
  return text === undefined ? 'undefined' : text.length > 160 ? `${text.slice(0, 160)}…` : text;
};

/**
 * Keeps the errors that explain the mismatch. In a union (anyOf) every branch reports errors; a
 * branch whose discriminator (`kind`, `status`, …) does not match is not the one the value meant,
 * so its errors are dropped when another branch got further.
 */
function relevantErrors(errors) {
  const branchOf = (e) => {
    const m = e.schemaPath.match(/^(.*\/anyOf\/\d+)\//);
    return m ? m[1] : null;
  };
  const discriminatorMiss = new Set();
  for (const e of errors) {
    if ((e.keyword === 'const' || e.keyword === 'enum') && branchOf(e)) discriminatorMiss.add(branchOf(e));
  }
  const kept = errors.filter((e) => e.keyword !== 'anyOf' && !(branchOf(e) && discriminatorMiss.has(branchOf(e))));
  return kept.length > 0 ? kept : errors;
}

function describe(e) {
  const at = e.instancePath || '(root)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: field "${e.params.additionalProperty}" is not in the SDK type (value ${show(e.data[e.params.additionalProperty])})`;
    case 'required':
      return `${at}: required field "${e.params.missingProperty}" is missing`;
    case 'enum':
      return `${at}: ${show(e.data)} is not one of ${show(e.params.allowedValues)}`;
    case 'const':
      return `${at}: expected ${show(e.params.allowedValue)}, got ${show(e.data)}`;
    case 'type':
      return `${at}: expected type ${e.params.type}, got ${show(e.data)}`;
    default:
      return `${at}: ${e.message} (got ${show(e.data)})`;
  }
}

/** Dates are ISO-8601 UTC strings everywhere in the Dfns API (docs/dfns.md §0); the SDK types only say `string`. */
function dateErrors(value, path = '') {
  const found = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => found.push(...dateErrors(v, `${path}/${i}`)));
  } else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (/^date([A-Z]|$)/.test(key) && typeof v === 'string' && !isUtcDateTime(v)) {
        found.push(`${path}/${key}: ${show(v)} is not an ISO-8601 UTC date-time`);
      } else {
        found.push(...dateErrors(v, `${path}/${key}`));
      }
    }
  }
  return found;
}

/** Throws an error naming every mismatch between `value` and the SDK type `typeName`. */
export function assertMatchesSdkType(typeName, value, context = typeName) {
  const validator = validatorFor(typeName);
  const problems = [];
  if (!validator(value)) {
    const errors = relevantErrors(validator.errors ?? []);
    const seen = new Set();
    for (const e of errors) {
      const line = describe(e);
      if (!seen.has(line)) seen.add(line), problems.push(line);
    }
  }
  problems.push(...dateErrors(value));
  if (problems.length > 0) {
    const shown = problems.slice(0, 12);
    const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : '';
    throw new Error(`${context}: response does not match SDK type ${typeName}:\n  ${shown.join('\n  ')}${more}`);
  }
  return value;
}
