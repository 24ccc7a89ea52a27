// A CommonJS consumer: require() of the ESM client (Node 20.19+, 22.12+) and of the bundled contract.
const client = require('@openrush/client');
const contract = require('openrush/openapi.json');
console.log(
  JSON.stringify({
    createOpenRushClient: typeof client.createOpenRushClient,
    OpenRushError: typeof client.OpenRushError,
    openapi: contract.openapi,
  }),
);
