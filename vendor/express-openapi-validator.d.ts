// The types of vendor/express-openapi-validator.js: express-openapi-validator's own (a devDependency). The .js beside
// this file is not in git: scripts/build.ts bundles it from the patched package (see there).
export { middleware, error, resolvers, serdes } from 'express-openapi-validator';
export { createRequestAjv } from 'express-openapi-validator/dist/framework/ajv/index.js';
export { ajvErrorsToValidatorError } from 'express-openapi-validator/dist/middlewares/util.js';
