// A CommonJS consumer of the client: require() of the ESM client (Node 20.19+, 22.12+).
const client = require('@openrush/client');
console.log(JSON.stringify({ createOpenRushClient: typeof client.createOpenRushClient, OpenRushError: typeof client.OpenRushError }));
