// Handlers typed from the contract: a handler whose reply does not match the operation's declared success
// response does not compile.
import type { NextFunction, Request, Response } from 'express';
import type { Operations } from '../dispatch.ts';
import type { paths } from '../../../generated/openapi.d.ts';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Path = keyof paths;
export type MethodOf<P extends Path> = {
  [M in Method]: NonNullable<paths[P][M]> extends never ? never : M;
}[Method];
export type Operation<P extends Path, M extends MethodOf<P>> = NonNullable<paths[P][M]>;

type SuccessStatus = 200 | 201 | 202;
type Responses<O> = O extends { responses: infer R } ? R : never;

/** The JSON replies an operation declares for success, as `{ status, body, headers? }`. */
export type Reply<O> = {
  [S in keyof Responses<O>]: S extends SuccessStatus
    ? Responses<O>[S] extends { content: { 'application/json': infer B } }
      ? { status: S; body: B; headers?: Record<string, string> }
      : never
    : never;
}[keyof Responses<O>];

export type RequestBodyOf<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
export type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
export type PathParamsOf<O> = O extends { parameters: { path?: infer Q } } ? NonNullable<Q> : never;

/** Typed views of a request that the validator has already checked against the contract. */
export interface Validated<O> {
  body: RequestBodyOf<O>;
  query: QueryOf<O>;
  params: PathParamsOf<O>;
}

export type Handler<O> = (req: Request, input: Validated<O>, res: Response) => Promise<Reply<O> | undefined>;

/** Registers a handler for a contract operation; `undefined` means the handler sent the response itself. */
export function route<P extends Path, M extends MethodOf<P>>(
  router: Operations,
  method: M,
  path: P,
  handler: Handler<Operation<P, M>>,
): void {
  router[method](path as string, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const input = { body: req.body, query: req.query, params: req.params } as Validated<Operation<P, M>>;
      const reply = await handler(req, input, res);
      if (!reply) return;
      const { status, body, headers } = reply as { status: number; body: unknown; headers?: Record<string, string> };
      if (headers) res.set(headers);
      res.status(status).json(body);
    } catch (error) {
      next(error);
    }
  });
}
