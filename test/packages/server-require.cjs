// A CommonJS consumer of the server package: require() of the bundled contract.
const contract = require('openrush/openapi.json');
console.log(JSON.stringify({ openapi: contract.openapi }));
