// The shape of a command handler: a TypeBox schema (compiled once) and a function.
import type { Static, TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { FIELD_RULES, normalizeContent } from "../protocol.ts";
import type { Conn } from "./connection.ts";

export interface Handler<S extends TSchema = TSchema> {
  readonly schema: S;
  readonly check: TypeCheck<S>;
  /** Trims `content` when the schema has one; returns a reason when it is then out of range. */
  normalize: ((cmd: { content?: unknown }) => string | undefined) | undefined;
  /** A short reason for a frame that failed `check` (never the schema or the input). */
  explain(value: unknown): string;
  /** Runs the command for one socket. Errors it throws become an `unavailable` event. */
  run(conn: Conn, cmd: Static<S>): void | Promise<void>;
}

export type Handlers = Map<string, Handler>;

/** Makes a handler from a schema and a function; the schema is compiled here, once. */
export function handler<S extends TSchema>(
  schema: S,
  run: (conn: Conn, cmd: Static<S>) => void | Promise<void>,
): Handler<S> {
  const check = TypeCompiler.Compile(schema);
  const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  return {
    schema,
    check,
    normalize: "content" in properties ? normalizeContent : undefined,
    explain(value) {
      const first = check.Errors(value).First();
      if (!first) return "invalid message";
      const field = first.path.split("/")[1] ?? "";
      const given = (value as Record<string, unknown>)[field];
      if (given === undefined) return `${field} is required`;
      return FIELD_RULES[field] ?? `${field}: ${first.message.toLowerCase()}`;
    },
    run,
  };
}
