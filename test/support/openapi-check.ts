/**
 * Checks for an OpenAPI 3.0 document without a validator package: the structural rules of the
 * specification that a generated document can break (versions, paths, operations, parameters,
 * responses, unique operation ids, resolvable `$ref`s, well-formed schemas), and a JSON Schema subset
 * (the keywords this project's documents use) to check real answers and examples against the schemas.
 * Each function returns the problems found, so a failing assertion shows all of them.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const PATH_ITEM_KEYS = new Set([...METHODS, 'summary', 'description', 'servers', 'parameters', '$ref']);
const PARAMETER_IN = new Set(['query', 'header', 'path', 'cookie']);
const SCHEMA_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object']);
const RESPONSE_CODE = /^([1-5]\d\d|[1-5]XX|default)$/;
const COMPONENT_NAME = /^[a-zA-Z0-9.\-_]+$/;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Resolves a local `#/a/b` reference, or undefined. */
export function resolveRef(doc: Obj, ref: string): Json | undefined {
  if (!ref.startsWith('#/')) return undefined;
  let node: Json | undefined = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = isObj(node) ? node[key] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Every rule broken by `doc`, as readable lines; [] for a valid document. */
export function openApiProblems(doc: unknown): string[] {
  const problems: string[] = [];
  const problem = (where: string, what: string) => problems.push(`${where}: ${what}`);
  if (!isObj(doc)) return ['document: not an object'];

  if (typeof doc.openapi !== 'string' || !/^3\.0\.\d+$/.test(doc.openapi)) problem('openapi', `not 3.0.x: ${String(doc.openapi)}`);
  const info = doc.info;
  if (!isObj(info) || typeof info.title !== 'string' || info.title === '' || typeof info.version !== 'string') {
    problem('info', 'needs a title and a version');
  }
  if (!isObj(doc.paths)) problem('paths', 'missing');

  // Every $ref anywhere must resolve.
  const walk = (node: Json, where: string): void => {
    if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${where}[${i}]`));
    else if (isObj(node)) {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && (typeof v !== 'string' || resolveRef(doc, v) === undefined)) problem(where, `unresolved $ref ${String(v)}`);
        // examples are data, not document structure
        if (k !== 'example' && k !== 'examples' && k !== 'default' && k !== 'enum') walk(v, `${where}/${k}`);
      }
    }
  };
  walk(doc, '#');

  const schemas = isObj(doc.components) && isObj(doc.components.schemas) ? doc.components.schemas : {};
  for (const [name, schema] of Object.entries(schemas)) {
    if (!COMPONENT_NAME.test(name)) problem(`components.schemas.${name}`, 'invalid component name');
    checkSchema(schema, `components.schemas.${name}`, problem);
  }

  const operationIds = new Map<string, string>();
  for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    if (!path.startsWith('/')) problem(path, 'path does not start with /');
    if (!isObj(item)) {
      problem(path, 'path item is not an object');
      continue;
    }
    for (const key of Object.keys(item)) if (!PATH_ITEM_KEYS.has(key) && !key.startsWith('x-')) problem(path, `unknown key ${key}`);
    const templated = new Set([...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]));
    for (const method of METHODS) {
      const op = item[method];
      if (op === undefined) continue;
      const where = `${method.toUpperCase()} ${path}`;
      if (!isObj(op)) {
        problem(where, 'operation is not an object');
        continue;
      }
      if (typeof op.operationId === 'string') {
        const other = operationIds.get(op.operationId);
        if (other !== undefined) problem(where, `operationId ${op.operationId} also used by ${other}`);
        operationIds.set(op.operationId, where);
      }
      if (op.tags !== undefined && (!Array.isArray(op.tags) || op.tags.some((t) => typeof t !== 'string'))) problem(where, 'tags must be strings');
      checkParameters(op.parameters, where, templated, problem);
      if (!isObj(op.responses) || Object.keys(op.responses).length === 0) problem(where, 'no responses');
      for (const [code, response] of Object.entries(isObj(op.responses) ? op.responses : {})) {
        checkResponse(response, `${where} ${code}`, problem);
        if (!RESPONSE_CODE.test(code)) problem(`${where} ${code}`, 'invalid response code');
      }
    }
  }
  return problems;
}

function checkParameters(parameters: Json | undefined, where: string, templated: Set<string>, problem: (w: string, p: string) => void): void {
  if (parameters === undefined) parameters = [];
  if (!Array.isArray(parameters)) {
    problem(where, 'parameters is not an array');
    return;
  }
  const seen = new Set<string>();
  for (const p of parameters) {
    if (!isObj(p) || typeof p.name !== 'string' || typeof p.in !== 'string') {
      if (!(isObj(p) && typeof p.$ref === 'string')) problem(where, `parameter without name/in: ${JSON.stringify(p)}`);
      continue;
    }
    const at = `${where} parameter ${p.in}:${p.name}`;
    if (!PARAMETER_IN.has(p.in)) problem(at, `invalid "in"`);
    const id = `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
    if (seen.has(id)) problem(at, 'duplicate parameter');
    seen.add(id);
    if (p.in === 'path' && (p.required !== true || !templated.has(p.name))) problem(at, 'path parameters must be required and in the path');
    if ((p.schema === undefined) === (p.content === undefined)) problem(at, 'needs exactly one of schema and content');
    if (p.required !== undefined && typeof p.required !== 'boolean') problem(at, 'required must be a boolean');
    if (p.schema !== undefined) checkSchema(p.schema, at, problem);
  }
  for (const name of templated) if (!seen.has(`path:${name}`)) problem(where, `path parameter ${name} is not described`);
}

function checkResponse(response: Json, where: string, problem: (w: string, p: string) => void): void {
  if (!isObj(response)) {
    problem(where, 'response is not an object');
    return;
  }
  if (typeof response.$ref === 'string') return;
  if (typeof response.description !== 'string') problem(where, 'response needs a description');
  for (const [name, header] of Object.entries(isObj(response.headers) ? response.headers : {})) {
    if (!isObj(header)) problem(`${where} header ${name}`, 'not an object');
    else if (header.name !== undefined || header.in !== undefined) problem(`${where} header ${name}`, 'must not have name or in');
    else if (header.$ref === undefined && (header.schema === undefined) === (header.content === undefined)) {
      problem(`${where} header ${name}`, 'needs exactly one of schema and content');
    } else if (header.schema !== undefined) checkSchema(header.schema, `${where} header ${name}`, problem);
  }
  for (const [type, media] of Object.entries(isObj(response.content) ? response.content : {})) {
    const at = `${where} ${type}`;
    if (!/^[\w.+-]+\/[\w.+*-]+$/.test(type)) problem(at, 'invalid media type');
    if (!isObj(media)) {
      problem(at, 'media type object is not an object');
      continue;
    }
    if (media.example !== undefined && media.examples !== undefined) problem(at, 'example and examples are mutually exclusive');
    if (media.schema !== undefined) checkSchema(media.schema, at, problem);
    for (const [name, ex] of Object.entries(isObj(media.examples) ? media.examples : {})) {
      if (!isObj(ex) || (ex.value === undefined && ex.externalValue === undefined && ex.$ref === undefined)) problem(`${at} example ${name}`, 'no value');
    }
  }
}

function checkSchema(schema: Json, where: string, problem: (w: string, p: string) => void): void {
  if (!isObj(schema)) {
    if (schema !== true && schema !== false) problem(where, 'schema is not an object');
    return;
  }
  if (typeof schema.$ref === 'string') return;
  if (schema.type !== undefined && (typeof schema.type !== 'string' || !SCHEMA_TYPES.has(schema.type))) {
    problem(where, `invalid type ${JSON.stringify(schema.type)} (OpenAPI 3.0: one type, null via nullable)`);
  }
  if (schema.type === 'array' && schema.items === undefined) problem(where, 'array without items');
  if (schema.nullable !== undefined && typeof schema.nullable !== 'boolean') problem(where, 'nullable must be a boolean');
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || schema.enum.length === 0)) problem(where, 'enum must be a non-empty array');
  if (schema.required !== undefined) {
    if (!Array.isArray(schema.required) || schema.required.some((r) => typeof r !== 'string')) problem(where, 'required must list names');
    else if (isObj(schema.properties)) {
      for (const r of schema.required) if (!(String(r) in schema.properties)) problem(where, `required ${String(r)} is not a property`);
    }
  }
  for (const [name, sub] of Object.entries(isObj(schema.properties) ? schema.properties : {})) checkSchema(sub, `${where}.${name}`, problem);
  if (schema.items !== undefined) checkSchema(schema.items, `${where}[]`, problem);
  if (isObj(schema.additionalProperties)) checkSchema(schema.additionalProperties, `${where}{}`, problem);
  for (const k of ['allOf', 'oneOf', 'anyOf']) {
    const list = schema[k];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) problem(where, `${k} must be a non-empty array`);
    else list.forEach((s, i) => checkSchema(s, `${where}.${k}[${i}]`, problem));
  }
}

/**
 * Where `value` does not match `schema` (a JSON Schema subset: $ref, allOf, oneOf, anyOf, type,
 * nullable, enum, required, properties, additionalProperties, items, min/max length and value).
 * `strict`: an object may hold only documented properties (unless additionalProperties says more),
 * which shows whether a schema documents everything a real answer has.
 */
export function schemaMismatches(value: unknown, schema: Json, doc: Obj, strict = false, where = '$'): string[] {
  if (!isObj(schema)) return [];
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(doc, schema.$ref);
    return target === undefined ? [`${where}: unresolved ${schema.$ref}`] : schemaMismatches(value, target, doc, strict, where);
  }
  const out: string[] = [];
  if (value === null) return schema.nullable === true || schema.type === undefined ? [] : [`${where}: null but not nullable`];
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf) out.push(...schemaMismatches(value, s, doc, strict, where));
  for (const k of ['oneOf', 'anyOf'] as const) {
    const list = schema[k];
    if (!Array.isArray(list)) continue;
    const matching = list.filter((s) => schemaMismatches(value, s, doc, strict, where).length === 0).length;
    if (k === 'oneOf' ? matching !== 1 : matching === 0) out.push(`${where}: matches ${matching} of the ${k} schemas`);
  }
  const type = schema.type;
  const actual = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (typeof type === 'string' && !(type === actual || (type === 'number' && actual === 'integer'))) {
    return [...out, `${where}: ${actual} where ${type} is documented`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === value)) out.push(`${where}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && [...value].length < schema.minLength) out.push(`${where}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && [...value].length > schema.maxLength) out.push(`${where}: longer than ${schema.maxLength}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) out.push(`${where}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) out.push(`${where}: above ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((v, i) => out.push(...schemaMismatches(v, schema.items as Json, doc, strict, `${where}[${i}]`)));
  if (isObj(value as Json)) {
    const obj = value as Obj;
    const properties = isObj(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required)) for (const r of schema.required) if (!(String(r) in obj)) out.push(`${where}: missing ${String(r)}`);
    for (const [k, v] of Object.entries(obj)) {
      if (k in properties) out.push(...schemaMismatches(v, properties[k], doc, strict, `${where}.${k}`));
      else if (isObj(schema.additionalProperties)) out.push(...schemaMismatches(v, schema.additionalProperties, doc, strict, `${where}.${k}`));
      else if (schema.additionalProperties === false || (strict && schema.additionalProperties !== true && isObj(schema.properties))) {
        out.push(`${where}: undocumented property ${k}`);
      }
    }
  }
  return out;
}
