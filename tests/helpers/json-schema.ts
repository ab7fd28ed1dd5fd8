/**
 * A small JSON Schema 2020-12 checker for the OpenAPI tests: enough for what `z.toJSONSchema`
 * writes (types, enums, objects, arrays, bounds, patterns, unions, `$ref` into the document).
 * A keyword it does not know is an error, so a schema it cannot check never passes unchecked.
 */

type Schema = Record<string, unknown> | boolean;

/** Keywords that only annotate. */
const ANNOTATIONS = new Set([
  "description",
  "default",
  "title",
  "examples",
  "example",
  "format",
  "$schema",
  "deprecated",
  "readOnly",
  "writeOnly",
]);

const typeOf = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;

/** The problems of `value` against `schema` (empty: valid); `$ref`s resolve inside `root`. */
export function checkJsonSchema(value: unknown, schema: Schema, root: unknown, at = "$"): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: not allowed`];
  const errors: string[] = [];
  const fail = (msg: string) => errors.push(`${at}: ${msg}`);
  for (const [key, rule] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue;
    const r = rule as never;
    switch (key) {
      case "$ref": {
        const target = (r as string)
          .replace(/^#\//, "")
          .split("/")
          .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root);
        if (target === undefined) fail(`unresolved $ref ${r}`);
        else errors.push(...checkJsonSchema(value, target as Schema, root, at));
        break;
      }
      case "type": {
        const types = Array.isArray(r) ? (r as string[]) : [r as string];
        const t = typeOf(value);
        if (!types.some((want) => want === t || (want === "number" && t === "integer")))
          fail(`expected ${types.join(" | ")}, got ${t}`);
        break;
      }
      case "enum":
        if (!(r as unknown[]).some((v) => JSON.stringify(v) === JSON.stringify(value)))
          fail(`not one of ${JSON.stringify(r)}`);
        break;
      case "const":
        if (JSON.stringify(r) !== JSON.stringify(value)) fail(`not ${JSON.stringify(r)}`);
        break;
      case "minLength":
      case "maxLength":
        if (typeof value === "string") {
          const n = [...value].length;
          if (key === "minLength" ? n < r : n > r) fail(`${key} ${r}, got ${n}`);
        }
        break;
      case "pattern":
        if (typeof value === "string" && !new RegExp(r, "u").test(value)) fail(`does not match ${r}`);
        break;
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum":
        if (typeof value === "number") {
          const ok =
            key === "minimum"
              ? value >= r
              : key === "maximum"
                ? value <= r
                : key === "exclusiveMinimum"
                  ? value > r
                  : value < r;
          if (!ok) fail(`${key} ${r}, got ${value}`);
        }
        break;
      case "minItems":
      case "maxItems":
        if (Array.isArray(value) && (key === "minItems" ? value.length < r : value.length > r))
          fail(`${key} ${r}, got ${value.length}`);
        break;
      case "items":
        if (Array.isArray(value))
          value.forEach((item, i) => {
            errors.push(...checkJsonSchema(item, r as Schema, root, `${at}[${i}]`));
          });
        break;
      case "required":
        if (typeOf(value) === "object")
          for (const name of r as string[])
            if (!Object.hasOwn(value as object, name)) fail(`missing ${name}`);
        break;
      case "properties":
        if (typeOf(value) === "object")
          for (const [name, sub] of Object.entries(r as Record<string, Schema>))
            if (Object.hasOwn(value as object, name))
              errors.push(
                ...checkJsonSchema((value as Record<string, unknown>)[name], sub, root, `${at}.${name}`),
              );
        break;
      case "additionalProperties":
        if (typeOf(value) === "object") {
          const known = new Set(Object.keys((schema as { properties?: object }).properties ?? {}));
          for (const [name, v] of Object.entries(value as object))
            if (!known.has(name)) errors.push(...checkJsonSchema(v, r as Schema, root, `${at}.${name}`));
        }
        break;
      case "propertyNames":
        if (typeOf(value) === "object")
          for (const name of Object.keys(value as object))
            errors.push(...checkJsonSchema(name, r as Schema, root, `${at} key ${name}`));
        break;
      case "anyOf":
      case "oneOf": {
        const passing = (r as Schema[]).filter(
          (s) => checkJsonSchema(value, s, root, at).length === 0,
        ).length;
        if (key === "anyOf" ? passing === 0 : passing !== 1)
          fail(`${key}: ${passing} of ${(r as Schema[]).length} alternatives match`);
        break;
      }
      case "not":
        if (checkJsonSchema(value, r as Schema, root, at).length === 0) fail("matches a schema it must not");
        break;
      case "multipleOf":
        if (typeof value === "number" && !Number.isInteger(value / r)) fail(`not a multiple of ${r}`);
        break;
      case "minProperties":
      case "maxProperties":
        if (typeOf(value) === "object") {
          const n = Object.keys(value as object).length;
          if (key === "minProperties" ? n < r : n > r) fail(`${key} ${r}, got ${n}`);
        }
        break;
      case "uniqueItems":
        if (r && Array.isArray(value) && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
          fail("items are not unique");
        break;
      case "allOf":
        for (const s of r as Schema[]) errors.push(...checkJsonSchema(value, s, root, at));
        break;
      default:
        fail(`the checker does not know the keyword ${key}`);
    }
  }
  return errors;
}
