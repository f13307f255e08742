import { applyDecorators, Type } from '@nestjs/common';
import {
  ApiExtension,
  ApiExtraModels,
  getSchemaPath,
  type OpenAPIObject,
  type OperationObject,
  type ParameterObject,
  type ReferenceObject,
  type SchemaObject,
} from '@nestjs/swagger';

const EXTENSION = 'x-query-model';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Documents an operation's query parameters from a (documentation-only) DTO: one parameter per
 * property, with the property's description, schema, default, example and `deprecated` from the DTO
 * (its JSDoc, through the Swagger plugin). For handlers that read the raw request rather than `@Query()`.
 *
 * @nestjs/swagger can flatten a DTO itself (`@ApiQuery({ type: Dto })`), but 12.0 drops every `enum`
 * while doing so. The DTO's model schema keeps everything, so the operation only names the model here
 * and {@link expandQueryModels} turns that schema into parameters once the document is built.
 */
export function ApiQueryModel(model: Type<unknown>): MethodDecorator {
  return applyDecorators(ApiExtraModels(model), ApiExtension(EXTENSION, getSchemaPath(model)));
}

/**
 * Replaces each operation's `x-query-model` by query parameters made from that model's schema, in the
 * model's property order, and removes the query models from `components.schemas` (they are not bodies).
 */
export function expandQueryModels(document: OpenAPIObject): OpenAPIObject {
  const schemas = document.components?.schemas ?? {};
  const expanded = new Set<string>();
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method] as (OperationObject & { [EXTENSION]?: string }) | undefined;
      const ref = operation?.[EXTENSION];
      if (operation === undefined || ref === undefined) continue;
      const name = ref.slice(ref.lastIndexOf('/') + 1);
      const model = schemas[name] as SchemaObject | undefined;
      if (model === undefined) throw new Error(`${EXTENSION}: no schema ${name}`);
      const fromModel = Object.entries(model.properties ?? {}).map(([property, schema]) =>
        toParameter(property, schema, model.required ?? []),
      );
      const own = (operation.parameters ?? []).filter((p) => !('in' in p && p.in === 'query' && model.properties?.[p.name]));
      operation.parameters = [...fromModel, ...own];
      delete operation[EXTENSION];
      expanded.add(name);
    }
  }
  for (const name of expanded) delete schemas[name];
  return document;
}

function toParameter(name: string, property: SchemaObject | ReferenceObject, required: string[]): ParameterObject {
  if ('$ref' in property) return { name, in: 'query', required: required.includes(name), schema: property };
  const { description, deprecated, ...schema } = property;
  const parameter: ParameterObject = { name, in: 'query', required: required.includes(name), schema };
  if (description !== undefined) parameter.description = description;
  if (deprecated) parameter.deprecated = true;
  return parameter;
}
